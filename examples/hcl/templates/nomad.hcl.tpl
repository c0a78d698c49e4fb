---
# Nomad agent configuration: the same escaping, here chosen per secret (escape: on the long
# form wins over the template's), to show that a secret can carry its own mode.
dest: out/nomad.hcl
mode: 0640
secrets:
  vault_token:
    ref: file:../secrets/nomad-vault-token
    escape: hcl
  consul:
    ref: file:../secrets/consul.json
    escape: hcl
---
vault {
  enabled = true
  address = "https://vault.service.consul:8200"
  token   = "{{vault_token}}"
}

consul {
  address = "127.0.0.1:8500"
  token   = "{{consul.agent_token}}"
}
