package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"syscall"
	"time"

	"github.com/proxyfs/proxyfs/rpcapi/client"
)

// This example mounts the default volume of a proxyfsd on loopback,
// creates a file, writes and reads it back, and lists the root directory.
func Example() {
	ctx := context.Background()
	c, err := client.Dial(ctx, "127.0.0.1:9450", client.WithCallTimeout(10*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	m, err := c.Mount(ctx, "default", client.MountOptions{User: "alice", UID: 1000, GID: 1000})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Unmount(ctx)

	st, err := m.CreatePath(ctx, "/hello.txt", 0o644)
	if errors.Is(err, syscall.EEXIST) {
		st, err = m.GetStatPath(ctx, "/hello.txt")
	}
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Write(ctx, st.Ino, []byte("hello world"), 0); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := m.Read(ctx, st.Ino, buf, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", buf[:n])

	for e, err := range m.Entries(ctx, m.RootInode()) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Name, e.Inode)
	}
}
