package main

import (
	"bytes"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// applyEnvAndConfig fills every flag the command line did not set from
// TENANTGATE_<FLAG>, then from the --config file. For serve, unknown keys in
// the file are an error, so a typo never silently leaves a default in place.
func applyEnvAndConfig(cmd *cobra.Command) error {
	flags := cmd.Flags()
	fromEnv := map[string]bool{}
	var err error
	flags.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" || f.Name == "version" {
			return
		}
		env := "TENANTGATE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, ok := os.LookupEnv(env)
		if !ok {
			return
		}
		if e := setFlag(f, []string{v}, true); e != nil {
			err = fmt.Errorf("environment %s: %w", env, e)
			return
		}
		fromEnv[f.Name] = true
	})
	if err != nil {
		return err
	}

	path, _ := flags.GetString("config")
	if path == "" {
		return nil
	}
	values, err := readConfigFile(path)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		f := flags.Lookup(k)
		if k == "config" {
			return fmt.Errorf("config %s: key %q cannot be set in the config file itself", path, k)
		}
		if f == nil {
			// One file may configure serve and the CLI alike; only serve,
			// which reads every key, treats an unknown one as a typo.
			if cmd.Name() != "serve" {
				continue
			}
			return fmt.Errorf("config %s: unknown key %q for %q (valid keys are this command's flag names)", path, k, cmd.CommandPath())
		}
		if f.Changed || fromEnv[k] {
			continue
		}
		if e := setFlag(f, values[k], false); e != nil {
			return fmt.Errorf("config %s: key %q: %w", path, k, e)
		}
	}
	return nil
}

// readConfigFile reads a YAML mapping of flag names to a scalar or a list of
// scalars.
func readConfigFile(path string) (map[string][]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var raw map[string]yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("config %s: not a YAML mapping of flag names to values: %w", path, err)
	}
	out := make(map[string][]string, len(raw))
	for k, n := range raw {
		switch n.Kind {
		case yaml.ScalarNode:
			out[k] = []string{n.Value}
		case yaml.SequenceNode:
			var vs []string
			for _, c := range n.Content {
				if c.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("config %s: key %q: list items must be plain values", path, k)
				}
				vs = append(vs, c.Value)
			}
			out[k] = vs
		default:
			return nil, fmt.Errorf("config %s: key %q: must be a value or a list of values", path, k)
		}
	}
	return out, nil
}

// setFlag sets a flag from outside the command line. For repeatable flags an
// environment value may hold several comma-separated values.
func setFlag(f *pflag.Flag, values []string, splitCommas bool) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		var all []string
		for _, v := range values {
			if splitCommas {
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p != "" {
						all = append(all, p)
					}
				}
			} else {
				all = append(all, v)
			}
		}
		if err := sv.Replace(all); err != nil {
			return err
		}
		f.Changed = true
		return nil
	}
	if len(values) != 1 {
		return fmt.Errorf("flag --%s takes one value", f.Name)
	}
	if err := f.Value.Set(values[0]); err != nil {
		return err
	}
	f.Changed = true
	return nil
}
