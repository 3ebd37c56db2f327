// Command etcd is etcd's own main (go.etcd.io/etcd/v3's main.go), built from the
// etcd server module at the version k8s.io/kubernetes requires.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
