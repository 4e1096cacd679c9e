package conformance

// What the function manager publishes for an empty payload and for {}, per
// era: its rule callback (baetyl-function-manager/ruler.go in Baetyl 1.0,
// openedge-function-manager/ruler.go in OpenEdge 0.1.2) publishes a
// non-empty result and, for an empty one, publishes nothing (it only
// acknowledges a QoS 1 message). What a function that returns what it got
// sees of an empty payload is the runtime's doing: Baetyl's runtimes hand
// it {}, OpenEdge 0.1.2's None.

// publishedEmpty says what the manager does with an empty answer, and how
// the era's own runtimes compare.
func publishedEmpty(p Profile, echo bool) string {
	const nothing = "the function manager publishes nothing for it (it acknowledges a QoS 1 message)"
	switch {
	case !echo:
		return nothing + ", as for a function of the era's own runtimes that returns nothing"
	case p == ProfileBaetyl:
		return nothing + "; Baetyl's own runtimes hand such a function {} and the manager publishes {}"
	}
	return nothing + ", as with OpenEdge 0.1.2's own runtimes, which hand such a function None"
}

// publishedObject says what the manager does with an answer of {}, and how
// the era's own runtimes compare.
func publishedObject(p Profile) string {
	if p == ProfileBaetyl {
		return "the function manager publishes {}, as with Baetyl's own runtimes, which hand such a function {}"
	}
	return "the function manager publishes {}; OpenEdge 0.1.2's own runtimes hand such a function None, answer an empty payload and the manager publishes nothing"
}
