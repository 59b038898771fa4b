// Command hello is the package BuildBinary's test builds: it prints whether
// it was built with the race detector, as its build settings say.
package main

import (
	"fmt"
	"runtime/debug"
)

func main() {
	race := "false"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-race" {
				race = s.Value
			}
		}
	}
	fmt.Printf("hello race=%s\n", race)
}
