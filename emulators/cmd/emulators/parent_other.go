//go:build !linux

package main

func dieWithGoRun() {}
