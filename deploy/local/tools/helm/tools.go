//go:build tools

// Package tools pins an upstream binary the local cluster uses.
package tools

import (
	_ "helm.sh/helm/v3/cmd/helm"
)
