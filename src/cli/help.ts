/** The `--help` text: commands, flags with their variables, exit codes. */
export const HELP = `emissary — put secrets where programs can read them

Usage:
  emissary [run] [flags]        run the daemon (default)
  emissary once [flags]         render every template once all its secrets resolve, run commands, exit
  emissary check [flags]        parse and validate every template without fetching; print a summary
  emissary render FILE [flags]  resolve and print one template to stdout; no write, no command
  emissary check --connect [--read] [--json] [--timeout D]
                                also log in to every backend in use and check every reference
                                (no value printed): ok, not set yet, denied, unreachable, invalid
  emissary refresh [REF|TEMPLATE…] [--reissue] [--json]
                                ask the running daemon (its --status-addr) to fetch now; all when
                                none named; --reissue also re-issues certificates and leases
  emissary --version | --help

Flags (flag > environment > config file > default):
  --templates DIR        EMISSARY_TPL_DIR          template directory (default: current directory)
  --pattern GLOB         EMISSARY_TPL_PATTERN      template file names (default: *.tpl, not recursive)
  --config FILE          EMISSARY_CONFIG           optional YAML config file
  --startup-delay D      EMISSARY_STARTUP_DELAY    run/once: sleep before starting, Go duration (default: 0s; e.g. 90s)
  --log-level L          EMISSARY_LOG_LEVEL        trace, debug, info, warn, error, fatal (default: info)
  --log-format F         EMISSARY_LOG_FORMAT       json (one object a line) or pretty (default: json)
  --status-addr A        EMISSARY_STATUS_ADDR      serve /healthz /readyz /metrics /status, e.g. 127.0.0.1:9750 (default: off)
  --backend-module P     EMISSARY_BACKEND_MODULES  load a custom backend module (repeatable; env: comma list)
  --timeout D            EMISSARY_TIMEOUT          once/render: give up after D (default: wait forever);
                                                   check --connect: deadline per backend (default 10s);
                                                   refresh: wait for the daemon this long (default 150s)
  --json                                           check, refresh: print the result as JSON
  --connect, --read                                check: log in and check references; --read also
                                                   reads values where only a read proves access (discarded)
  --reissue                                        refresh: re-issue certificates, re-read leased secrets
  --state-dir DIR        EMISSARY_STATE_DIR        keeps issued certificates and leases across restarts
                                                   (default: /var/lib/emissary; "" = off)
  -h, --help                                       show this help
  -v, --version                                    print the version

Backends: file, env, http (alias insecure: EMISSARY_HTTP_URL or the file named by
EMISSARY_INSECURE_URLFILE), awssm (AWS Secrets Manager), ssm (AWS SSM Parameter Store),
vault (HashiCorp Vault: VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE, VAULT_CACERT, VAULT_SKIP_VERIFY).

Exit codes:
  0  success, including a graceful stop on SIGTERM/SIGINT
  1  runtime failure: once/render timed out (pending templates and references are printed),
     a template or a command failed
  2  usage or configuration error (bad flag, bad config file, check found errors)
  check --connect: 1 a reference is not ok, 2 a configuration error
  refresh: 1 the daemon cannot be reached or a fetch failed, 2 a name no template uses

Signals (run): SIGHUP reloads config and templates keeping fetched values; SIGUSR1 fetches
every reference now (as refresh); SIGTERM/SIGINT stop gracefully; a second one forces.
`;
