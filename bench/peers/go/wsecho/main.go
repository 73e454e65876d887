// bench/peers/go/wsecho - a WebSocket echo server as Go programmers write
// one: net/http and gorilla/websocket (Debian's
// golang-github-gorilla-websocket-dev), one goroutine per connection
// reading each message and writing it back with its type; gorilla's
// defaults (the HTTP server's 4 KiB buffers, no compression).
//
//	wsecho PORT
//
// Built without modules against Debian's copy (see bench/WS.md):
//
//	cd bench/peers/go/wsecho && GO111MODULE=off GOPATH=/usr/share/gocode \
//	  go build -o /tmp/go_wsecho .
//
// Prints "port <n>" when listening; runs until killed. Run with
// GOMAXPROCS=2 like the other servers.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"

	"github.com/gorilla/websocket"
)

var upgrader = websocket.Upgrader{}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, msg); err != nil {
			return
		}
	}
}

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("port %s\n", os.Args[1])
	fmt.Fprintln(os.Stderr, http.Serve(l, http.HandlerFunc(echo)))
	os.Exit(1)
}
