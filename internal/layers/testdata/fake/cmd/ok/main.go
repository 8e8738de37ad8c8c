// Command ok is a fake production binary that keeps the rules.
package main

import "example.com/fake/sdk"

func main() { sdk.Client() }
