package server

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
)

// document is a fixed representation served with a strong ETag: the spec, the docs
// page and its assets. Bodies are prepared once; gzip-encoded assets are stored
// compressed and inflated (once) only for clients that do not accept gzip.
type document struct {
	contentType  string
	cacheControl string
	csp          string // overrides the API's policy for HTML pages
	etag         string
	body         []byte // identity encoding; nil until inflated when gz is set
	gz           []byte // gzip encoding, when the source is stored compressed

	inflate sync.Once
}

func newDocument(contentType, cacheControl string, body []byte) *document {
	sum := sha256.Sum256(body)
	return &document{contentType: contentType, cacheControl: cacheControl, body: body,
		etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

func newGzipDocument(contentType, cacheControl string, gz []byte) *document {
	sum := sha256.Sum256(gz)
	return &document{contentType: contentType, cacheControl: cacheControl, gz: gz,
		etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
}

func (d *document) identity() []byte {
	d.inflate.Do(func() {
		if d.body != nil {
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(d.gz))
		if err == nil {
			d.body, err = io.ReadAll(zr)
		}
		if err != nil {
			d.body = nil
		}
	})
	return d.body
}

// etagMatches reports whether an If-None-Match header names etag (or is "*").
func etagMatches(ifNoneMatch *string, etag string) bool {
	if ifNoneMatch == nil {
		return false
	}
	for _, v := range strings.Split(*ifNoneMatch, ",") {
		v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "W/"))
		if v == etag || v == "*" {
			return true
		}
	}
	return false
}

func acceptsGzip(acceptEncoding *string) bool {
	if acceptEncoding == nil {
		return false
	}
	for _, v := range strings.Split(*acceptEncoding, ",") {
		name, q, _ := strings.Cut(strings.TrimSpace(v), ";")
		if strings.EqualFold(strings.TrimSpace(name), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// documentResponse writes a document, or 304 when the client's copy is current.
// It implements the generated Visit…Response interfaces of every operation that
// serves a fixed document.
type documentResponse struct {
	doc         *document
	notModified bool
	gzip        bool
}

func respondDocument(d *document, ifNoneMatch, acceptEncoding *string) documentResponse {
	return documentResponse{doc: d, notModified: etagMatches(ifNoneMatch, d.etag), gzip: d.gz != nil && acceptsGzip(acceptEncoding)}
}

func (resp documentResponse) visit(w http.ResponseWriter) error {
	h := w.Header()
	h.Set("ETag", resp.doc.etag)
	h.Set("Cache-Control", resp.doc.cacheControl)
	if resp.doc.csp != "" {
		h.Set("Content-Security-Policy", resp.doc.csp)
	}
	if resp.doc.gz != nil {
		h.Set("Vary", "Accept-Encoding")
	}
	if resp.notModified {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	body := resp.doc.gz
	if resp.gzip {
		h.Set("Content-Encoding", "gzip")
	} else {
		body = resp.doc.identity()
	}
	h.Set("Content-Type", resp.doc.contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

func (resp documentResponse) VisitGetOpenAPIJSONResponse(w http.ResponseWriter) error {
	return resp.visit(w)
}
func (resp documentResponse) VisitGetOpenAPIYAMLResponse(w http.ResponseWriter) error {
	return resp.visit(w)
}
func (resp documentResponse) VisitGetDocsResponse(w http.ResponseWriter) error { return resp.visit(w) }
func (resp documentResponse) VisitGetDocsAssetResponse(w http.ResponseWriter) error {
	return resp.visit(w)
}
