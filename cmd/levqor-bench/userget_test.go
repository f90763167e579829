package main

import "testing"

func TestParseKeyCreate(t *testing.T) {
	out := "id:     key_01\nowner:  usr_01\nscopes: users:read\nkey:    lvq_live_abc\n(the key is shown this once)\n"
	owner, key, err := parseKeyCreate(out)
	if err != nil || owner != "usr_01" || key != "lvq_live_abc" {
		t.Errorf("parseKeyCreate = %q, %q, %v; want usr_01, lvq_live_abc", owner, key, err)
	}
	if _, _, err := parseKeyCreate("id:     key_01\nscopes: users:read\n"); err == nil {
		t.Error("parseKeyCreate accepted output without owner: and key: lines")
	}
}

func TestBareMode(t *testing.T) {
	for _, arg := range []string{bareHealthFlag, bareUserFlag, bareIntakeFlag} {
		if bareMode(arg) == nil {
			t.Errorf("bareMode(%q) = nil", arg)
		}
	}
	if bareMode("-bin") != nil {
		t.Error("bareMode accepted an ordinary flag")
	}
}
