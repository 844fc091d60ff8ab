package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tenantgate/tenantgate/tenants"
)

// errChainBroken makes `audit verify` exit non-zero after it has printed
// the break.
var errChainBroken = errors.New("the audit chain is broken")

func newAuditCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read and check the per-tenant audit trail",
	}
	sf.register(cmd)
	cmd.AddCommand(newAuditListCmd(&sf), newAuditVerifyCmd(&sf))
	return cmd
}

func newAuditListCmd(sf *storeFlags) *cobra.Command {
	var tenantID, event, output string
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "list --tenant ID [--since DURATION] [--event NAME] [-o json]",
		Short: "List a tenant's audit events, oldest first",
		Long: `List a tenant's audit events, oldest first: every event, or those of the last
--since (such as 24h) and of one --event (` + strings.Join(tenants.AuditEvents, ", ") + `).
-o json prints them as a JSON array, each with its seq, prev and hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenantID == "" {
				return errors.New("--tenant is required")
			}
			if output != "" && output != "json" {
				return fmt.Errorf("-o %q: supported output formats are json (or none for a table)", output)
			}
			if since < 0 {
				return fmt.Errorf("--since %s: must not be negative", since)
			}
			q := tenants.AuditQuery{Tenant: tenantID, Event: event}
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			evs, err := a.auditEvents(cmd.Context(), q)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), evs)
			}
			return printAuditTable(cmd.OutOrStdout(), evs)
		},
	}
	cmd.Flags().StringVar(&tenantID, "tenant", "", "tenant id")
	cmd.Flags().DurationVar(&since, "since", 0, "only events of the last DURATION (such as 24h)")
	cmd.Flags().StringVar(&event, "event", "", "only events of this name")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json")
	return cmd
}

func newAuditVerifyCmd(sf *storeFlags) *cobra.Command {
	var tenantID string
	cmd := &cobra.Command{
		Use:   "verify --tenant ID",
		Short: "Check the tenant's audit hash chain; names the first break",
		Long: `Check the tenant's audit hash chain from the oldest retained event to the newest.
Events removed by retention (--audit-retention) are no break; an event changed, deleted
or added behind tenantgate's back is. Prints "ok" with the number of events, or the
first break (the event's seq and what is wrong) and exits 1.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tenantID == "" {
				return errors.New("--tenant is required")
			}
			a, err := sf.open(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			v, err := a.verifyAudit(cmd.Context(), tenantID)
			if err != nil {
				return err
			}
			if v.Break != nil {
				return fmt.Errorf("audit chain of tenant %s broken at event %d: %s", tenantID, v.Break.Seq, v.Break.Problem)
			}
			out := cmd.OutOrStdout()
			switch {
			case v.Events == 0:
				fmt.Fprintf(out, "ok: tenant %s: no audit events", tenantID)
			default:
				fmt.Fprintf(out, "ok: tenant %s: %d audit events, %d to %d, chain intact", tenantID, v.Events, v.First, v.Last)
			}
			if v.Pruned > 0 {
				fmt.Fprintf(out, " (events up to %d removed by retention)", v.Pruned)
			}
			fmt.Fprintln(out)
			return nil
		},
	}
	cmd.Flags().StringVar(&tenantID, "tenant", "", "tenant id")
	return cmd
}

func printAuditTable(w io.Writer, evs []tenants.AuditEvent) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tEVENT\tOUTCOME\tACTOR\tSUBJECT\tEMAIL\tMETHOD\tCLIENT\tREQUEST ID\tCHANGES")
	for _, e := range evs {
		outcome := e.Outcome
		if e.Reason != "" {
			outcome += " (" + e.Reason + ")"
		}
		changes := strings.Join(e.Changes, ",")
		if len(e.Roles) > 0 {
			changes = strings.TrimPrefix(changes+" roles="+strings.Join(e.Roles, ","), " ")
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Event, outcome,
			dash(printable(e.Actor)), dash(printable(e.Subject)), dash(printable(e.Email)), dash(e.Method), dash(e.Client), dash(printable(e.RequestID)), dash(changes))
	}
	return tw.Flush()
}

// listAudit: GET /admin/v1/tenants/{id}/audit[?since=RFC3339|DURATION][&event=NAME];
// 200 with the tenant's events, oldest first, as a JSON array.
func (a *adminAPI) listAudit(w http.ResponseWriter, r *http.Request) {
	q := tenants.AuditQuery{Tenant: r.PathValue("id"), Event: r.URL.Query().Get("event")}
	if s := r.URL.Query().Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			q.Since = t
		} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			q.Since = time.Now().Add(-d)
		} else {
			writeAdminError(w, http.StatusBadRequest, "bad_request", "since: give an RFC 3339 time or a duration such as 24h")
			return
		}
	}
	evs, err := a.ops.auditEvents(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeAdminJSON(w, http.StatusOK, evs)
}

// verifyAudit: GET /admin/v1/tenants/{id}/audit/verify; 200 with the
// verdict ({"Events":…, "Break": null or {"seq":…, "problem":…}}).
func (a *adminAPI) verifyAudit(w http.ResponseWriter, r *http.Request) {
	v, err := a.ops.verifyAudit(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeAdminJSON(w, http.StatusOK, v)
}
