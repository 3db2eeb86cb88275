//go:build tools

// Package tools pins an upstream binary the local cluster uses.
package tools

import (
	_ "github.com/yannh/kubeconform/cmd/kubeconform"
)
