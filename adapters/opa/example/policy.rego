# An example policy whose decisions Writ witnesses: result.escalate → escalate (Writ opens an
# approval), result.allow → allow, anything else → deny. result.legal_basis, when present, is
# the GDPR Art. 6(1) basis recorded with the attestation (else WRIT_OPA_DEFAULT_LEGAL_BASIS).
package payments

default authz := {"allow": false, "legal_basis": "contract"}

authz := {"allow": true, "legal_basis": "contract"} if {
	input.amount <= 100
}

authz := {"escalate": true, "legal_basis": "contract", "reasons": ["amount above 100 needs a person"]} if {
	input.amount > 100
	input.amount <= 10000
}
