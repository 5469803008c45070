package etcdswift_test

// make bench-scaleout, the S3 path: sequential data through a gateway on a
// volume whose data is in S3 (Swift's s3api), beside the S3 client's raw
// PUT and GET of 1 MiB objects measured in the same run:
//
//	PROXYFS_BENCH_SCALEOUT=1 go test ./vfsbackend/etcdswift -run TestScaleoutBenchS3 -v

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
	"github.com/proxyfs/proxyfs/vfsbackend"
	"github.com/proxyfs/proxyfs/vfsbackend/etcdswift"
)

func TestScaleoutBenchS3(t *testing.T) {
	if os.Getenv("PROXYFS_BENCH_SCALEOUT") != "1" {
		t.Skip("set PROXYFS_BENCH_SCALEOUT=1 (make bench-scaleout)")
	}
	secs, _ := strconv.Atoi(os.Getenv("PROXYFS_BENCH_SECONDS"))
	if secs <= 0 {
		secs = 5
	}
	d := time.Duration(secs) * time.Second
	r := servers.RemoteS3(t.Name()+strconv.FormatInt(time.Now().UnixNano(), 10), etcdswift.DefaultChunkBytes)
	writer, reader := startGateway(t, r), startGateway(t, r)
	raw, err := etcdswift.Open(vfsbackend.Options{Remote: r, Format: vfsbackend.FormatNever})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()

	// Baselines: the engine's S3 client (minio-go), one request at a time.
	mib := bytes.Repeat([]byte("s"), 1<<20)
	putRate := rate(t, 1, d, func(_, i int) error { return raw.RawSwiftPutForBench(ctx, fmt.Sprintf("raw/%d", i), mib) })
	if err := raw.RawSwiftPutForBench(ctx, "raw/get", mib); err != nil {
		t.Fatal(err)
	}
	getRate := rate(t, 1, d, func(_, _ int) error { return raw.RawSwiftGetForBench(ctx, "raw/get") })

	mount := func(addr string) *client.Mount {
		c, err := client.Dial(ctx, addr, client.WithConns(4, 4))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		m, err := c.Mount(ctx, "default", client.MountOptions{User: "root"})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	wr, rd := seqData(t, mount(writer.TCPAddr), mount(reader.TCPAddr), d)

	ratio := func(a, b float64) string { return fmt.Sprintf("%.2fx", a/b) }
	var out bytes.Buffer
	fmt.Fprintf(&out, "\nscale-out bench, data in S3 (Swift's s3api; %v per figure; same run)\n", d)
	fmt.Fprintf(&out, "| | figure | baseline (same run) | ratio | target |\n|---|---|---|---|---|\n")
	fmt.Fprintf(&out, "| sequential write, 1 MiB calls | %.1f MB/s | S3 PUT 1 MiB (minio-go): %.1f MB/s | %s | >= 0.7x |\n", wr*1.048576, putRate*1.048576, ratio(wr, putRate))
	fmt.Fprintf(&out, "| sequential read, 1 MiB calls | %.1f MB/s | S3 GET 1 MiB (minio-go): %.1f MB/s | %s | >= 0.7x |\n", rd*1.048576, getRate*1.048576, ratio(rd, getRate))
	t.Log(out.String())
}
