---
dest: /etc/consul.d/tls/ca.pem
mode: 0644
command: systemctl restart consul
secrets:
  tls:
    ref: vault:pki/issue/consul-server
    params:
      common_name: server.dc1.consul
      alt_names: localhost
      ip_sans: 127.0.0.1
      ttl: 72h
    renew_at: 0.67
---
{{#tls.ca_chain}}
{{.}}
{{/tls.ca_chain}}
