package pipeline

import (
	"sort"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/metamesh/metamesh/controlplane/translate"
)

// logConditions logs, in key order, every condition of out that is not
// True: one warning per condition, naming the object, where it was read
// when origins knows, and the condition's type, reason and message.
func logConditions(log *zap.Logger, out *translate.Output, origins map[string]string) {
	keys := make([]string, 0, len(out.Status))
	for key := range out.Status {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		for _, c := range out.Status[key] {
			if c.Status == metav1.ConditionTrue {
				continue
			}
			fields := []zap.Field{zap.String("object", key)}
			if origin, ok := origins[key]; ok {
				fields = append(fields, zap.String("source", origin))
			}
			fields = append(fields, zap.String("condition", c.Type), zap.String("reason", c.Reason), zap.String("message", c.Message))
			log.Warn("config object not fully applied", fields...)
		}
	}
}
