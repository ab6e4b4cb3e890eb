# envtest.mk: the real kube-apiserver and etcd the controller tests run
# against (controlplane/kube, deploy, and testdata/peers/interop's registry
# status test). hack/envtest.sh builds kube-apiserver
# once into a cache folder outside the repository (about 12 min on 2 cores),
# installs Debian's etcd when missing, and prints the folder; a warm run only
# checks the binaries. ENVTEST_ASSETS expands, in a recipe, to that folder:
#   KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) go test ./controlplane/kube/...
.PHONY: envtest
ENVTEST_ASSETS = $$(GO=$(GO) hack/envtest.sh)

envtest:
	@echo "KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS)"
