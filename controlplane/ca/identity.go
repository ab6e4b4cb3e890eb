package ca

import (
	"context"
	"fmt"
	"strings"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	authenticationv1 "k8s.io/api/authentication/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WorkloadID is the SPIFFE ID of the workloads of a service account:
// spiffe://<td>/ns/<namespace>/sa/<serviceAccount>.
func WorkloadID(td spiffeid.TrustDomain, namespace, serviceAccount string) (spiffeid.ID, error) {
	return spiffeid.FromSegments(td, "ns", namespace, "sa", serviceAccount)
}

// Account is who a token belongs to: a service account and, for a token
// bound to a pod (a projected token), that pod.
type Account struct {
	Namespace, ServiceAccount string
	Pod                       string // "" when the token is bound to no pod
}

// podNameExtra is the TokenReview extra field naming the pod a projected
// token is bound to.
const podNameExtra = "authentication.kubernetes.io/pod-name"

// ReviewToken asks the API server (a TokenReview) whose service-account
// token this is. The token must be valid, unexpired, for one of
// audiences (the API server's own when none are given), and a service
// account's; anything else is an error saying why.
func ReviewToken(ctx context.Context, c client.Client, token string, audiences []string) (Account, error) {
	tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: audiences}}
	if err := c.Create(ctx, tr); err != nil {
		return Account{}, fmt.Errorf("ca: token review: %w", err)
	}
	st := tr.Status
	if !st.Authenticated {
		reason := st.Error
		if reason == "" {
			reason = "not authenticated"
		}
		return Account{}, fmt.Errorf("ca: token refused: %s", reason)
	}
	rest, ok := strings.CutPrefix(st.User.Username, "system:serviceaccount:")
	ns, sa, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ns == "" || sa == "" {
		return Account{}, fmt.Errorf("ca: token of %q, not a service account", st.User.Username)
	}
	acct := Account{Namespace: ns, ServiceAccount: sa}
	if pods := st.User.Extra[podNameExtra]; len(pods) == 1 {
		acct.Pod = pods[0]
	}
	return acct, nil
}
