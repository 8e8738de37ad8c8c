// Command worker is a fake production binary that reaches the fake emulator through mid.
package main

import "example.com/fake/mid"

func main() { mid.Run() }
