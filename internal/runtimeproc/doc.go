// Package runtimeproc is what oe-rt's commands share to run a runtime:
// where its program is (Resolve).
package runtimeproc
