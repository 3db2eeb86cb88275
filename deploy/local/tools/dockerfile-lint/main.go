// Command dockerfile-lint runs BuildKit's Dockerfile checks (the rules of `docker build --check`) without a
// container engine: parse, dispatch every stage, print each warning; exit 1 on any warning or error.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	digest "github.com/opencontainers/go-digest"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerui"
)

// offline answers every base image lookup with an empty linux/amd64 image: no registry is reached, and the
// checks that need nothing from the base image (all but platform and base-image metadata ones) still run.
type offline struct{}

func (offline) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	return ref, "", []byte(`{"architecture":"amd64","os":"linux","config":{}}`), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: dockerfile-lint DOCKERFILE")
		os.Exit(2)
	}
	path := os.Args[1]
	dt, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	src := llb.NewSourceMap(nil, path, "Dockerfile", dt)
	src.Definition = &llb.Definition{}
	opt := dockerfile2llb.ConvertOpt{Config: dockerui.Config{}, SourceMap: src, MetaResolver: offline{}}
	res, err := dockerfile2llb.DockerfileLint(context.Background(), dt, opt)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, w := range res.Warnings {
		line := int32(0)
		if len(w.Location.Ranges) > 0 {
			line = w.Location.Ranges[0].Start.Line
		}
		fmt.Printf("%s:%d: %s: %s (%s)\n", path, line, w.RuleName, w.Detail, w.URL)
	}
	if res.Error != nil {
		fmt.Printf("%s: error: %s\n", path, res.Error.Message)
		os.Exit(1)
	}
	if len(res.Warnings) > 0 {
		os.Exit(1)
	}
	fmt.Printf("%s: no BuildKit check warnings\n", path)
}
