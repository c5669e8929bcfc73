# The example rule set, in Rego: the twin of policies/examples/cedar/rules.cedar.
#
# Writ evaluates the entrypoint writ/decision, compiled to Wasm by OPA (opa build -t wasm
# -e writ/decision). It must answer {"allow": bool, "tier": "standard|sensitive|critical",
# "reasons": [...]}; a malformed answer denies the request, and an undefined one means "not
# applicable" (beside Cedar, only Cedar then decides; alone, nothing applies and it is denied).
# This set gives a default, so it always decides. The input is
# {action, resource, scope, context, value, currency, time: {rfc3339, hour, weekday}, agent: {id, class, trust_tier}}.
package writ

tier_rank := {"standard": 0, "sensitive": 1, "critical": 2}

category := split(input.action, ".")[0]

resource_type := split(input.resource, ":")[0]

resource_id := substring(input.resource, count(resource_type) + 1, -1)

# Each permit that matches names the tier it asks for.
permits contains "standard" if {
	category == "email"
	resource_type == "email"
}

# A send that states no bound is unbounded, so it counts as bulk.
permits contains "sensitive" if {
	input.action == "email.send"
	resource_type == "email"
	not small_mailing
}

small_mailing if input.scope.max_emails <= 10

permits contains "sensitive" if category == "bank"

permits contains "critical" if {
	input.action == "bank.transfer"
	input.value > 10000
}

# Money without a value is unbounded: as critical as the largest.
permits contains "critical" if {
	category == "bank"
	not input.value
}

permits contains "standard" if {
	input.action == "file.read"
	resource_type == "file"
	startswith(resource_id, "/srv/reports/")
}

permits contains "sensitive" if {
	category == "db"
	input.agent.trust_tier in {"T1", "T2"}
	input.time.hour >= 8
	input.time.hour < 18
}

# A forbid beats every permit.
forbids contains "no agent gets a shell" if category == "shell"

forbids contains "unregistered agents never move money" if {
	category == "bank"
	input.agent.trust_tier == "unregistered"
}

# The highest tier among the permits that matched.
tier := t if {
	some t in permits
	every u in permits {
		tier_rank[t] >= tier_rank[u]
	}
}

default decision := {"allow": false, "tier": "standard", "reasons": ["no rule permits this request"]}

decision := {"allow": false, "tier": "standard", "reasons": sort([r | some r in forbids])} if count(forbids) > 0

decision := {"allow": true, "tier": tier, "reasons": sort([sprintf("permitted at tier %s", [t]) | some t in permits])} if {
	count(forbids) == 0
	count(permits) > 0
}
