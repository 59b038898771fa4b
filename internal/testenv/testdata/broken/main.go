// Command broken does not compile, on purpose: BuildBinary's test checks
// that the compiler's message reaches the failure.
package main

func main() {
	var n int = "not a number"
	_ = n
}
