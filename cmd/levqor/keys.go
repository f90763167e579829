package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/levqor/levqor"
	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/keys"
	"github.com/levqor/levqor/store"
	"github.com/levqor/levqor/users"
)

const keysUsage = `usage:
  levqor keys create --owner ID|EMAIL [--scopes s1,s2] [--name NAME] [--test] [--expires-in DURATION]
  levqor keys list [--owner ID] [--limit N]
  levqor keys revoke KEY_ID
  levqor keys roll KEY_ID [--grace DURATION]

With an email as --owner, the user is created when absent (bootstrap of the first admin).
Scopes: ` + "jobs:read, jobs:write, users:read, users:write, metrics:read, admin" + `.
The secret of a created or rolled key is printed once and kept nowhere.`

// keysCommand manages API keys directly in the database, beside a running server.
func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{"keys needs a subcommand\n" + keysUsage}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	st, err := store.OpenShared(ctx, storeOptions(cfg))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	svc := keys.NewService(st, nil)

	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	switch sub {
	case "create":
		owner := fs.String("owner", "", "owner user id or email")
		scopes := fs.String("scopes", keys.ScopeAdmin, "comma-separated scopes")
		name := fs.String("name", "", "a label for the key")
		test := fs.Bool("test", false, "issue an lvq_test_ key")
		expiresIn := fs.Duration("expires-in", 0, "expire after this long (0: never)")
		if err := fs.Parse(args); err != nil {
			return usageError{err.Error() + "\n" + keysUsage}
		}
		ownerID, err := resolveOwner(ctx, st, *owner)
		if err != nil {
			return err
		}
		in := keys.CreateInput{OwnerID: ownerID, Name: *name, Scopes: strings.Split(*scopes, ","), Env: keys.EnvLive}
		if *test {
			in.Env = keys.EnvTest
		}
		if *expiresIn > 0 {
			t := time.Now().Add(*expiresIn).UTC()
			in.ExpiresAt = &t
		}
		k, secret, err := svc.Create(ctx, in)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "id:     %s\nowner:  %s\nscopes: %s\nkey:    %s\n(the key is shown this once)\n", k.ID, k.OwnerID, strings.Join(k.Scopes, ","), secret)
		return err
	case "list":
		owner := fs.String("owner", "", "only this owner's keys")
		limit := fs.Int("limit", 100, "at most this many (1-500)")
		if err := fs.Parse(args); err != nil {
			return usageError{err.Error() + "\n" + keysUsage}
		}
		list, err := svc.List(ctx, *owner, *limit)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tOWNER\tKEY\tSCOPES\tCREATED\tEXPIRES\tREVOKED")
		for _, k := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s…%s\t%s\t%s\t%s\t%s\n", k.ID, k.OwnerID, k.Prefix, k.Last4, strings.Join(k.Scopes, ","),
				k.CreatedAt.Format(time.RFC3339), fmtTime(k.ExpiresAt), fmtTime(k.RevokedAt))
		}
		return tw.Flush()
	case "revoke":
		if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
			return usageError{"keys revoke takes one key id\n" + keysUsage}
		}
		if err := svc.Revoke(ctx, fs.Arg(0)); err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "revoked %s\n", fs.Arg(0))
		return err
	case "roll":
		grace := fs.Duration("grace", 24*time.Hour, "how long the old key keeps working")
		id := ""
		if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
			id, args = args[0], args[1:]
		}
		if err := fs.Parse(args); err != nil || id == "" || fs.NArg() != 0 {
			return usageError{"keys roll takes one key id\n" + keysUsage}
		}
		k, secret, err := svc.Roll(ctx, id, *grace)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "id:     %s\nkey:    %s\nthe old key %s stops working at %s\n(the key is shown this once)\n",
			k.ID, secret, id, time.Now().Add(*grace).UTC().Format(time.RFC3339))
		return err
	}
	return usageError{fmt.Sprintf("unknown keys subcommand %q\n%s", sub, keysUsage)}
}

// resolveOwner accepts a user id, or an email (creating that user when absent).
func resolveOwner(ctx context.Context, st store.Store, owner string) (string, error) {
	if owner == "" {
		return "", usageError{"keys create needs --owner\n" + keysUsage}
	}
	if !strings.Contains(owner, "@") {
		u, err := st.GetUser(ctx, owner)
		return u.ID, err
	}
	u, _, err := users.NewService(st).Upsert(ctx, keys.Principal{Scopes: []string{keys.ScopeAdmin}}, owner, users.Fields{})
	return u.ID, err
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// cliError renders application errors for a terminal: the caller-safe message.
func cliError(err error) error {
	if code := levqor.ErrorCode(err); code != "" && code != levqor.EInternal {
		return fmt.Errorf("%s", levqor.ErrorMessage(err))
	}
	return err
}
