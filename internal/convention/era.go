package convention

// EraInfo is one master generation: everything oe-rt knows that differs
// between eras, in one entry. Adding an era is one entry of Eras (and its
// proto under proto/, with its schema in client.ForProfile).
type EraInfo struct {
	// Name is the era's and its profile's name (--profile).
	Name string
	// ProtoPackage is the proto package of its Function service: the
	// function manager calls /<ProtoPackage>.Function/Call.
	ProtoPackage string
	// ConfigPath is where its master puts an instance's configuration,
	// relative to the instance's working directory in native mode (and
	// under / in a container).
	ConfigPath string
	// MasterEnv are variables its master sets for every instance and no
	// earlier master does: a runtime that sees one knows the era.
	MasterEnv []string
}

// Eras lists the eras, the oldest (and default) first.
var Eras = []EraInfo{
	{
		Name:         EraOpenEdge,
		ProtoPackage: "openedge",
		ConfigPath:   "etc/openedge/service.yml",
	},
	{
		Name:         EraBaetyl,
		ProtoPackage: "baetyl",
		ConfigPath:   "etc/baetyl/service.yml",
		MasterEnv:    []string{"BAETYL_SERVICE_NAME", "BAETYL_SERVICE_INSTANCE_NAME", "BAETYL_SERVICE_INSTANCE_ADDRESS"},
	},
}

// EraOf returns the entry of the era named name, or the default era's
// (the first) when there is none of that name.
func EraOf(name string) EraInfo {
	for _, e := range Eras {
		if e.Name == name {
			return e
		}
	}
	return Eras[0]
}

// Info is the entry of the profile's era.
func (p Profile) Info() EraInfo { return EraOf(p.Era()) }
