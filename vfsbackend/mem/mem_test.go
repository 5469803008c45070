package mem_test

import (
	"testing"

	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/backendtest"
	"github.com/proxyfs/proxyfs/vfsbackend/mem"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, dir string) vfsbackend.Backend {
		return mem.New(vfsbackend.Options{})
	})
}

func TestRegistered(t *testing.T) {
	b, err := vfsbackend.Open("memory", vfsbackend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
