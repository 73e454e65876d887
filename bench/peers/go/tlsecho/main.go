// bench/peers/go/tlsecho - a TLS echo server as Go programmers write one:
// crypto/tls over net, one goroutine per connection reading into its own
// buffer and writing back what it read (Go's defaults: TLS 1.2-1.3,
// X25519 first, session tickets on).
//
//	tlsecho PORT CERT KEY
//
// Prints "port <n>" when listening; runs until killed. Run with
// GOMAXPROCS=2 like the other servers.
package main

import (
	"crypto/tls"
	"fmt"
	"net"
	"os"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	cert, err := tls.LoadX509KeyPair(os.Args[2], os.Args[3])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert},
		MinVersion: tls.VersionTLS12}
	l, err := tls.Listen("tcp", "127.0.0.1:"+os.Args[1], cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("port %s\n", os.Args[1])
	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}
		go serve(c)
	}
}
