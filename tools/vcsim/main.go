// Command vcsim starts govmomi's vCenter simulator for the iaas tests and the embedded default.
//
// Debian ships govmomi's simulator package but not its vcsim program, so this launcher is ours.
// It prints one JSON line with the SOAP URL and credentials once the server listens, then serves
// until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type ready struct {
	URL      string `json:"url"`
	Username string `json:"username"`
	Password string `json:"password"`
	PID      int    `json:"pid"`
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	username := flag.String("username", "administrator@vsphere.local", "login user name")
	password := flag.String("password", "vcsim", "login password")
	idle := flag.Duration("session-idle-timeout", 0, "expire idle sessions after this long (0: never)")
	delay := flag.String("method-delay", "", "per-method delay, e.g. PowerOnVM_Task:500,ReconfigVM_Task:200 (ms)")
	datastores := flag.Int("datastores", 3, "number of datastores (LocalDS_0..N-1)")
	dsSpace := flag.String("datastore-space", "", "capacity and free space per datastore in GiB, e.g. LocalDS_0=100:5,LocalDS_1=100:60")
	vmCount := flag.Int("vm", 2, "VMs per standalone host and per cluster resource pool (the default inventory has one of each: 2 gives 4 VMs, 5000 gives 10,000)")
	demo := flag.Bool("demo", true, "add the demo inventory: a template, tools running and hot-add on the generated VMs")
	flag.Parse()

	if *idle > 0 {
		simulator.SessionIdleTimeout = *idle
	}

	model := simulator.VPX()
	model.Datastore = *datastores
	model.Machine = *vmCount
	if *delay != "" {
		model.DelayConfig.MethodDelay = map[string]int{}
		for _, kv := range strings.Split(*delay, ",") {
			parts := strings.SplitN(kv, ":", 2)
			ms, err := strconv.Atoi(strings.TrimSpace(parts[len(parts)-1]))
			if len(parts) != 2 || err != nil {
				fail("bad -method-delay entry %q", kv)
			}
			model.DelayConfig.MethodDelay[strings.TrimSpace(parts[0])] = ms
		}
	}
	if err := model.Create(); err != nil {
		fail("create model: %v", err)
	}
	model.Service.Listen = &url.URL{Host: *listen, User: url.UserPassword(*username, *password)}
	server := model.Service.NewServer()

	if err := setDatastoreSpace(*dsSpace); err != nil {
		fail("%v", err)
	}
	if *demo {
		if err := addDemoInventory(server.URL); err != nil {
			fail("demo inventory: %v", err)
		}
	}

	u := *server.URL
	u.User = nil
	line, _ := json.Marshal(ready{URL: u.String(), Username: *username, Password: *password, PID: os.Getpid()})
	fmt.Println(string(line))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	server.Close()
	model.Remove()
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "vcsim: "+format+"\n", args...)
	os.Exit(1)
}

// setDatastoreSpace overrides the summary of named datastores: by default every simulated
// datastore reports the free space of the same local filesystem, which makes evacuation
// targets indistinguishable.
func setDatastoreSpace(spec string) error {
	if spec == "" {
		return nil
	}
	const gib = int64(1) << 30
	for _, entry := range strings.Split(spec, ",") {
		nameVal := strings.SplitN(entry, "=", 2)
		if len(nameVal) != 2 {
			return fmt.Errorf("bad -datastore-space entry %q", entry)
		}
		capFree := strings.SplitN(nameVal[1], ":", 2)
		if len(capFree) != 2 {
			return fmt.Errorf("bad -datastore-space entry %q (want NAME=CAPACITY:FREE)", entry)
		}
		capacity, err1 := strconv.ParseInt(capFree[0], 10, 64)
		free, err2 := strconv.ParseInt(capFree[1], 10, 64)
		if err1 != nil || err2 != nil || free > capacity {
			return fmt.Errorf("bad -datastore-space entry %q", entry)
		}
		found := false
		for _, ref := range simulator.Map.All("Datastore") {
			ds := simulator.Map.Get(ref.Reference()).(*simulator.Datastore)
			if ds.Name != nameVal[0] {
				continue
			}
			found = true
			ds.Summary.Capacity = capacity * gib
			ds.Summary.FreeSpace = free * gib
			info := ds.Info.GetDatastoreInfo()
			info.FreeSpace = free * gib
			info.MaxFileSize = capacity * gib
		}
		if !found {
			return fmt.Errorf("-datastore-space: no datastore %q", nameVal[0])
		}
	}
	return nil
}

// addDemoInventory goes through the API, as a user would, so the inventory is what vCenter would hold.
func addDemoInventory(u *url.URL) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := govmomi.NewClient(ctx, u, true)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)
	finder := find.NewFinder(c.Client, true)
	dc, err := finder.Datacenter(ctx, "DC0")
	if err != nil {
		return err
	}
	finder.SetDatacenter(dc)
	vms, err := finder.VirtualMachineList(ctx, "*")
	if err != nil {
		return err
	}
	for i, vm := range vms {
		// The generated VMs are powered on; give them running tools and an address so guest
		// operations and `info` have something real to show. Every other VM has hot-add on.
		spec := types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
			&types.OptionValue{Key: "SET.guest.toolsRunningStatus", Value: "guestToolsRunning"},
			&types.OptionValue{Key: "SET.guest.toolsStatus", Value: "toolsOk"},
			&types.OptionValue{Key: "SET.summary.guest.toolsStatus", Value: "toolsOk"},
			&types.OptionValue{Key: "SET.guest.ipAddress", Value: fmt.Sprintf("10.0.0.%d", 10+i)},
		}}
		if i%2 == 0 {
			on := true
			spec.CpuHotAddEnabled = &on
			spec.MemoryHotAddEnabled = &on
		}
		task, err := vm.Reconfigure(ctx, spec)
		if err := waitTask(ctx, task, err); err != nil {
			return fmt.Errorf("reconfigure %s: %w", vm.Name(), err)
		}
	}

	src, err := finder.VirtualMachine(ctx, "DC0_H0_VM0")
	if err != nil {
		return err
	}
	var props mo.VirtualMachine
	if err := src.Properties(ctx, src.Reference(), []string{"parent"}, &props); err != nil {
		return err
	}
	folder := object.NewFolder(c.Client, *props.Parent)
	clone := types.VirtualMachineCloneSpec{Template: true, PowerOn: false}
	task, err := src.Clone(ctx, folder, "tmpl-ubuntu-22.04", clone)
	return waitTask(ctx, task, err)
}

func waitTask(ctx context.Context, task *object.Task, err error) error {
	if err != nil {
		return err
	}
	return task.Wait(ctx)
}
