package signin

// Refusal is a refused sign-in that the method can explain. A method returns
// it (possibly wrapped) instead of a plain error when the cause is known and
// the fix is the IdP administrator's: the sign-in pages then log Reason
// instead of their generic reason and show Message as the cause. Neither
// may carry provider text beyond what the method chose, nor any secret; Err
// is the detail for the log.
type Refusal struct {
	// Reason is the log reason code ("sso_saml_transient_nameid").
	Reason string
	// Message says, for the person and their administrator, what went
	// wrong and what to set at the IdP.
	Message string
	Err     error
}

// Error returns Err's text.
func (r *Refusal) Error() string { return r.Err.Error() }

// Unwrap returns Err.
func (r *Refusal) Unwrap() error { return r.Err }
