package jobs

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/levqor/levqor/outbound"
)

// TestDeliveryErrorClassifiesRealTransportErrors: each way a delivery can fail, as
// the guard's client reports it, is summed up by what it is (matched with
// errors.Is/As, not by its text) and never names the URL, which may carry secrets.
func TestDeliveryErrorClassifiesRealTransportErrors(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	hangup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer hangup.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String() + "/hook?token=s3cret"
	ln.Close()

	strict, err := outbound.NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	local, err := outbound.NewGuard([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		guard *outbound.Guard
		url   string
		want  string
	}{
		{"refused by the guard", strict, slow.URL + "/hook?token=s3cret", "refused: 127.0.0.1 is a loopback address"},
		{"timed out", local, slow.URL + "/hook?token=s3cret", "timed out"},
		{"connection refused", local, closed, "connection refused"},
		{"anything else", local, hangup.URL + "/hook?token=s3cret", "delivery failed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := tt.guard.Client(200*time.Millisecond).Post(tt.url, "application/json", strings.NewReader("{}"))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("POST %s succeeded; the case needs a transport error", tt.url)
			}
			got := deliveryError(err)
			if got != tt.want {
				t.Errorf("deliveryError(%q) = %q, want %q", err, got, tt.want)
			}
			if strings.Contains(got, "s3cret") || strings.Contains(got, "/hook") {
				t.Errorf("deliveryError(%q) = %q names the URL", err, got)
			}
		})
	}
}
