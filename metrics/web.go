package metrics

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
)

// CheckWebConfig validates the exporter toolkit web configuration at
// path (its certificates and keys are loaded, its password hashes
// checked). For a listener beyond loopback it must also protect the
// endpoint: TLS, and basic auth users or verified client certificates.
func CheckWebConfig(path string, loopback bool) error {
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("metrics.web_config_file %s: %w", path, err)
	}
	if loopback {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("metrics.web_config_file: %w", err)
	}
	var c web.Config
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return fmt.Errorf("metrics.web_config_file %s: %w", path, err)
	}
	if !c.TLSConfig.IsEnabled() {
		return fmt.Errorf("metrics.web_config_file %s has no tls_server_config: /metrics beyond loopback needs TLS", path)
	}
	if len(c.Users) == 0 && c.TLSConfig.ClientAuth != "RequireAndVerifyClientCert" {
		return fmt.Errorf("metrics.web_config_file %s has neither basic_auth_users nor client_auth_type RequireAndVerifyClientCert: /metrics beyond loopback needs one", path)
	}
	return nil
}

// Serve serves hs on l; with a web configuration file, through the
// exporter toolkit (TLS and basic auth as the file says, reloaded on
// each new connection). It returns when the server stops.
func Serve(l net.Listener, hs *http.Server, webConfigFile string) error {
	if webConfigFile == "" {
		return hs.Serve(l)
	}
	addrs := []string{l.Addr().String()}
	systemd := false
	return web.Serve(l, hs, &web.FlagConfig{WebListenAddresses: &addrs, WebSystemdSocket: &systemd, WebConfigFile: &webConfigFile},
		slog.New(slog.DiscardHandler))
}
