---
# Consul agent configuration. Every {{name}} is escaped for a quoted HCL string, so a secret
# holding quotes, backslashes, newlines, ${…} or %{…} stays one string value: it cannot end
# the string, add keys, or turn into an interpolation — not in HCL 1 (Consul, Vault and the
# Nomad agent read their configuration with it) nor in HCL 2.
dest: out/consul.hcl
mode: 0640
escape: hcl
command: ["/bin/sh", "-c", "echo consul reload >> out/reloads.log"]
secrets:
  consul: file:../secrets/consul.json     # relative to this template's directory
---
datacenter = "dc1"
encrypt    = "{{consul.gossip_key}}"

acl {
  enabled        = true
  default_policy = "deny"
  tokens {
    agent   = "{{consul.agent_token}}"
    default = "{{consul.default_token}}"
  }
}

node_meta {
  owner = "{{consul.owner}}"
}
