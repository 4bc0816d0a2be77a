package role

// Role is Ingress or Egress.
type Role string

const (
	Ingress Role = "ingress"
	Egress  Role = "egress"
)

// Valid reports whether r is Ingress or Egress.
func (r Role) Valid() bool { return r == Ingress || r == Egress }
