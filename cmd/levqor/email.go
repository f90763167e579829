package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/levqor/levqor/config"
	"github.com/levqor/levqor/notifier"
)

const emailUsage = `usage:
  levqor email test --to ADDRESS [--template NAME]

Sends one message through Resend with the template's sample data and prints Resend's
email id. It needs LEVQOR_RESEND_API_KEY; LEVQOR_RESEND_BASE_URL, LEVQOR_EMAIL_DOMAIN
and LEVQOR_PUBLIC_URL apply as they do to the server.
Templates: `

// emailSendTimeout bounds the one send of "email test".
const emailSendTimeout = 30 * time.Second

// emailCommand runs "levqor email …"; its one subcommand, test, sends a test message
// synchronously through the notifier.
func emailCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	usage := emailUsage + strings.Join(notifier.Templates(), ", ") + " (default " + notifier.Welcome + ")."
	if len(args) == 0 || args[0] != "test" {
		return usageError{"email needs the subcommand test\n" + usage}
	}
	fs := flag.NewFlagSet("email test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	to := fs.String("to", "", "the recipient's address")
	template := fs.String("template", notifier.Welcome, "the template to send")
	if err := fs.Parse(args[1:]); err != nil {
		return usageError{err.Error() + "\n" + usage}
	}
	switch {
	case fs.NArg() != 0:
		return usageError{"email test takes no arguments besides its flags\n" + usage}
	case *to == "":
		return usageError{"email test needs --to ADDRESS\n" + usage}
	case !slices.Contains(notifier.Templates(), *template):
		return usageError{fmt.Sprintf("unknown template %q\n%s", *template, usage)}
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if cfg.ResendAPIKey == "" {
		return errors.New("LEVQOR_RESEND_API_KEY is not set, so system email is disabled; set it to send a test message")
	}
	n, err := notifier.New(notifier.Config{
		BaseURL:   cfg.ResendBaseURL,
		APIKey:    cfg.ResendAPIKey,
		Domain:    cfg.EmailDomain,
		PublicURL: cfg.PublicURL,
	})
	if err != nil {
		return err
	}
	defer n.Close(context.WithoutCancel(ctx)) // nothing is queued: Close returns at once

	ctx, cancel := context.WithTimeout(ctx, emailSendTimeout)
	defer cancel()
	id, err := n.Send(ctx, notifier.Message{Template: *template, To: *to, Data: notifier.ExampleData(*template)})
	if err != nil {
		return fmt.Errorf("send the test email: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "sent %s to %s through Resend\nid: %s\n", *template, *to, id)
	return err
}
