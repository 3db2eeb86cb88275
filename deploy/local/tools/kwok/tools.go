//go:build tools

// Package tools pins an upstream binary the local cluster uses.
package tools

import (
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
