# deploy.mk: deploy/crds are copies of the generated crds/bases, so that
# `kubectl apply -k deploy/` needs nothing outside deploy/. A test in deploy/
# fails when they differ; deploy-crds refreshes them.
.PHONY: deploy-crds
deploy-crds:
	rm -f deploy/crds/*.yaml
	cp crds/bases/*.yaml deploy/crds/
