---
# A SecureString (decrypted) and a StringList (its comma text).
dest: out/consul.env
mode: 0640
secrets:
  gossip: ssm:/demo/consul/gossip
  servers: ssm:/demo/consul/servers
---
CONSUL_ENCRYPT="{{gossip}}"
CONSUL_RETRY_JOIN="{{servers}}"
