// vcsim-lab serves VMware's vCenter simulator (govmomi's simulator package, as Debian packages
// it) for Glint's VMware store tests: the vSphere SOAP API at /sdk and the datastore file
// interface at /folder, over TLS with the lab's certificate.
//
// Two things are set up here that the stock simulator leaves out, both as vCenter does them:
//   - /folder requests must carry an active session's vmware_soap_session cookie, else 401
//     (the stock simulator serves anyone);
//   - the datastores live in fixed folders under -dir, so data outlives a restart, and their
//     free space can be set (-free), so that the choice between datastores can be tested.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8989", "address to serve on")
	user := flag.String("user", "glint", "the one user name accepted")
	pass := flag.String("pass", "glint-vcsim-secret", "its password")
	cert := flag.String("cert", "", "TLS certificate (PEM); plain HTTP without one")
	key := flag.String("key", "", "TLS private key (PEM)")
	dir := flag.String("dir", "", "folder holding one folder per datastore (required)")
	datastores := flag.Int("datastores", 2, "datastores in datacenter DC0 (LocalDS_0, LocalDS_1, ...)")
	idle := flag.Duration("idle", 0, "sessions idle this long expire (0: never)")
	free := flag.String("free", "", "reported free space, as name=bytes,... (default: the folder's filesystem)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	simulator.SessionIdleTimeout = *idle

	model := simulator.VPX()
	model.Datastore = *datastores
	// No virtual machines: their files would land in the simulator's own temporary folders.
	model.Machine = 0
	if err := model.Create(); err != nil {
		log.Fatal(err)
	}
	if err := placeDatastores(*dir, *free); err != nil {
		log.Fatal(err)
	}

	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*user, *pass)}
	if *cert != "" {
		pair, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			log.Fatal(err)
		}
		model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	}
	server := model.Service.NewServer()
	sdk := *server.URL
	sdk.User = nil
	server.Config.Handler = requireSession(server.Config.Handler, &sdk)

	fmt.Println(server.URL.String())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	server.Close()
}

// placeDatastores moves every datastore into <dir>/<name> and sets its reported space.
func placeDatastores(dir, free string) error {
	sizes := map[string]int64{}
	for _, item := range strings.Split(free, ",") {
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		bytes, err := strconv.ParseInt(value, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("-free: %q is not name=bytes", item)
		}
		sizes[name] = bytes
	}
	for _, entity := range simulator.Map.All("Datastore") {
		ds := entity.(*simulator.Datastore)
		folder := filepath.Join(dir, ds.Name)
		if err := os.MkdirAll(folder, 0o700); err != nil {
			return err
		}
		info := ds.Info.GetDatastoreInfo()
		// The simulator made an empty temporary folder for it: not left behind.
		if info.Url != folder {
			_ = os.Remove(info.Url)
		}
		info.Url = folder
		ds.Summary.Url = folder
		var stat syscall.Statfs_t
		if err := syscall.Statfs(folder, &stat); err != nil {
			return err
		}
		space := int64(stat.Bavail * uint64(stat.Bsize))
		if bytes, ok := sizes[ds.Name]; ok {
			space = bytes
		}
		info.FreeSpace = space
		ds.Summary.FreeSpace = space
		ds.Summary.Capacity = int64(stat.Blocks * uint64(stat.Bsize))
	}
	return nil
}

// requireSession answers 401 to /folder requests without an active session's cookie, as
// vCenter does; everything else goes to the simulator.
func requireSession(next http.Handler, sdk *url.URL) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/folder/") && !sessionActive(r, sdk) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// sessionActive asks the simulator whether the request's session cookie names a live session.
func sessionActive(r *http.Request, sdk *url.URL) bool {
	cookie, err := r.Cookie(soap.SessionCookieName)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	client := soap.NewClient(sdk, true)
	client.Jar.SetCookies(sdk, []*http.Cookie{{Name: cookie.Name, Value: cookie.Value}})
	vim, err := vim25.NewClient(ctx, client)
	if err != nil {
		return false
	}
	current, err := session.NewManager(vim).UserSession(ctx)
	return err == nil && current != nil
}
