---
# private_key: local: the key is generated on this machine and Vault signs a CSR (pki/sign):
# the key never crosses the network. One reference in all three templates: one issuance, three
# files, written in the same pass, then one restart.
dest: /etc/consul.d/tls/server.pem
mode: 0644
command: systemctl restart consul
secrets:
  tls:
    ref: vault:pki/sign/consul-server
    params:
      common_name: server.dc1.consul
      alt_names: localhost
      ip_sans: 127.0.0.1
      ttl: 72h
    renew_at: 0.67
    private_key: local          # EC P-256 made here; only a CSR goes to Vault
---
{{tls.certificate}}
