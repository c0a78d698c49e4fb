---
# Rendered into the directory consul reads as its second -config-dir.
dest: /rendered/consul/acl-tokens.hcl
mode: 0400
command: pkill -HUP -x consul
secrets:
  agent_token: vault:secret/consul#agent_token
---
acl {
  tokens {
    agent = "{{agent_token}}"
  }
}
