package gmail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// email is what send_email puts into a message.
type email struct {
	To, Cc, Bcc []string
	ReplyTo     string
	Subject     string
	Text, HTML  string
}

// Bounds on one address, so that its header line stays within RFC 5322's 998
// characters even where it cannot be folded: as typed (the schema's limit too), and the
// address proper (RFC 5321's limit on a path).
const (
	maxAddressChars = 320
	maxMailboxBytes = 254
)

// header is one header field of the message being built.
type header struct{ name, value string }

// buildMessage renders e as an RFC 5322 message with CRLF line endings. Every header
// value is checked to hold no line break before the builder folds it, so no input can
// add a header field or end the header section; addresses are parsed by net/mail and
// re-rendered, the subject is RFC 2047-encoded when it is not plain ASCII, long values
// are folded, and bodies are quoted-printable. A returned error is safe to show: it
// names the field, not its value.
func buildMessage(e email, date time.Time, messageID string) ([]byte, error) {
	if e.Text == "" && e.HTML == "" {
		return nil, errors.New("send text, html or both")
	}
	if len(e.To) == 0 {
		return nil, errors.New("to needs at least one address")
	}
	var hs []header
	for _, f := range []struct {
		name, field string
		list        []string
	}{{"To", "to", e.To}, {"Cc", "cc", e.Cc}, {"Bcc", "bcc", e.Bcc}} {
		if len(f.list) == 0 {
			continue
		}
		v, err := addressList(f.field, f.list)
		if err != nil {
			return nil, err
		}
		hs = append(hs, header{f.name, v})
	}
	if e.ReplyTo != "" {
		v, err := address("reply_to", e.ReplyTo)
		if err != nil {
			return nil, err
		}
		hs = append(hs, header{"Reply-To", v})
	}
	subject, err := encodeSubject(e.Subject)
	if err != nil {
		return nil, err
	}
	hs = append(hs,
		header{"Subject", subject},
		header{"Date", date.Format(time.RFC1123Z)},
		header{"Message-ID", "<" + messageID + ">"},
		header{"MIME-Version", "1.0"},
	)
	for _, f := range []struct{ name, body string }{{"text", e.Text}, {"html", e.HTML}} {
		if !utf8.ValidString(f.body) {
			return nil, fmt.Errorf("%s is not valid UTF-8", f.name)
		}
	}

	var body bytes.Buffer
	switch {
	case e.Text != "" && e.HTML != "":
		mw := multipart.NewWriter(&body)
		for _, p := range []struct{ typ, content string }{{"text/plain", e.Text}, {"text/html", e.HTML}} {
			w, err := mw.CreatePart(textproto.MIMEHeader{
				"Content-Type":              {mime.FormatMediaType(p.typ, map[string]string{"charset": "utf-8"})},
				"Content-Transfer-Encoding": {"quoted-printable"},
			})
			if err != nil {
				return nil, err
			}
			if err := writeQuotedPrintable(w, p.content); err != nil {
				return nil, err
			}
		}
		if err := mw.Close(); err != nil {
			return nil, err
		}
		hs = append(hs, header{"Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()})})
	default:
		typ, content := "text/plain", e.Text
		if e.Text == "" {
			typ, content = "text/html", e.HTML
		}
		hs = append(hs,
			header{"Content-Type", mime.FormatMediaType(typ, map[string]string{"charset": "utf-8"})},
			header{"Content-Transfer-Encoding", "quoted-printable"})
		if err := writeQuotedPrintable(&body, content); err != nil {
			return nil, err
		}
	}

	var msg bytes.Buffer
	for _, h := range hs {
		// The last line of defence: whatever the code above produced, a value with a
		// line break of its own never reaches the message.
		if strings.ContainsAny(h.value, "\r\n") {
			return nil, fmt.Errorf("the %s header would hold a line break", h.name)
		}
		writeField(&msg, h.name, h.value)
	}
	msg.WriteString("\r\n")
	msg.Write(body.Bytes())
	return msg.Bytes(), nil
}

// maxLineChars is the longest header line the builder writes when it can break the
// value: RFC 2047's limit for lines with encoded words, within RFC 5322's 78.
const maxLineChars = 76

// writeField writes "Name: value" CRLF, folding at the value's spaces so that lines stay
// within maxLineChars where the words allow. Folding inserts CRLF before an existing
// space, which unfolding removes again, so the value's meaning is unchanged; a word
// too long to fit (a plain-ASCII subject without spaces) keeps its line, which the
// limits on subjects and addresses keep well under RFC 5322's 998.
func writeField(b *bytes.Buffer, name, value string) {
	b.WriteString(name)
	b.WriteByte(':')
	line := len(name) + 1
	for i, w := range strings.Split(value, " ") {
		// Fold only after a line with content, so no line is whitespace alone; the
		// first word may move to a line of its own.
		if line+1+len(w) > maxLineChars && (i > 0 && line > 1 || i == 0 && len(w) > 0) {
			b.WriteString("\r\n")
			line = 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		line += 1 + len(w)
	}
	b.WriteString("\r\n")
}

func addressList(field string, list []string) (string, error) {
	out := make([]string, len(list))
	for i, s := range list {
		a, err := address(fmt.Sprintf("%s[%d]", field, i), s)
		if err != nil {
			return "", err
		}
		out[i] = a
	}
	return strings.Join(out, ", "), nil
}

// address parses one address and renders it anew, so that what reaches the header is
// what net/mail understood, not what the user typed.
func address(field, s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s must not contain a line break", field)
	}
	if utf8.RuneCountInString(s) > maxAddressChars {
		return "", fmt.Errorf("%s is longer than %d characters", field, maxAddressChars)
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("%s is not valid UTF-8", field)
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", fmt.Errorf("%s is not an email address", field)
	}
	// An encoded-word display name can decode to anything; the address itself must be
	// printable ASCII or UTF-8 without controls.
	if hasControl(a.Name) || hasControl(a.Address) {
		return "", fmt.Errorf("%s must not contain control characters", field)
	}
	if len(a.Address) > maxMailboxBytes {
		return "", fmt.Errorf("%s is longer than an email address can be", field)
	}
	return a.String(), nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 {
			return true
		}
	}
	return false
}

// encodeSubject trims the subject and encodes it as RFC 2047 encoded words when it is
// not plain ASCII.
func encodeSubject(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n") {
		return "", errors.New("subject must not contain a line break")
	}
	if !utf8.ValidString(s) {
		return "", errors.New("subject is not valid UTF-8")
	}
	if utf8.RuneCountInString(s) > MaxSubjectChars {
		return "", fmt.Errorf("subject is longer than %d characters", MaxSubjectChars)
	}
	return mime.QEncoding.Encode("utf-8", strings.TrimSpace(s)), nil
}

// writeQuotedPrintable writes s as quoted-printable text with CRLF line breaks. Lone CRs
// become line breaks too: RFC 5322 allows no bare CR, and the encoder would pair one with
// a later LF.
func writeQuotedPrintable(w io.Writer, s string) error {
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	qp := quotedprintable.NewWriter(w)
	if _, err := io.WriteString(qp, s); err != nil {
		return err
	}
	return qp.Close()
}
