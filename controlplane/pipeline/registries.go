package pipeline

import (
	"maps"

	"github.com/metamesh/metamesh/controlplane/registry"
	"github.com/metamesh/metamesh/controlplane/translate"
)

// registryOrigins are the origins of in, the source's set base with the
// registries' providers merged in: base's, plus "registry URL[,URL…]" for
// each ServiceEntry the registries made (one base does not have), so that
// its problems name where it came from (docs/registries.md).
func registryOrigins(in *translate.Input, base *Objects) map[string]string {
	origins := map[string]string{}
	fromSource := map[string]bool{}
	if base != nil {
		maps.Copy(origins, base.Origins)
		for _, se := range base.Input.ServiceEntries {
			fromSource[translate.Key("ServiceEntry", se.Namespace, se.Name)] = true
		}
	}
	for _, se := range in.ServiceEntries {
		if key := translate.Key("ServiceEntry", se.Namespace, se.Name); !fromSource[key] {
			origins[key] = "registry " + se.Annotations[registry.RegistryAnnotation]
		}
	}
	return origins
}
