package relay

import (
	"fmt"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/pipedrive-gateway/pipedrive-gateway/config"
)

// ExternalOptions turns NATS_CREDS, NATS_NKEY_SEED and NATS_TLS_* (file
// paths) into connection options, checking that each file is readable so
// that a typo fails start-up instead of every reconnect.
func ExternalOptions(n config.NATS) ([]nats.Option, error) {
	var opts []nats.Option
	for name, path := range map[string]string{
		"NATS_CREDS": n.Creds, "NATS_NKEY_SEED": n.NKeySeed, "NATS_TLS_CA": n.TLSCA,
		"NATS_TLS_CERT": n.TLSCert, "NATS_TLS_KEY": n.TLSKey,
	} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if n.Creds != "" {
		opts = append(opts, nats.UserCredentials(n.Creds))
	}
	if n.NKeySeed != "" {
		opt, err := nats.NkeyOptionFromSeed(n.NKeySeed)
		if err != nil {
			return nil, fmt.Errorf("NATS_NKEY_SEED: %w", err)
		}
		opts = append(opts, opt)
	}
	if n.TLSCA != "" {
		opts = append(opts, nats.RootCAs(n.TLSCA))
	}
	if n.TLSCert != "" {
		opts = append(opts, nats.ClientCert(n.TLSCert, n.TLSKey))
	}
	return opts, nil
}
