package container

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/client"
)

// File is one file of an image's build context.
type File struct {
	Name string
	Mode int64
	Data []byte
}

// BuildImage builds an image tagged tag from a Dockerfile and the files of
// its context, sent as a tar through the Engine API (ImageBuild): nothing
// is pulled, so FROM scratch, or an image already on the engine. Images
// are not swept: whoever builds one removes it.
func BuildImage(ctx context.Context, cli *client.Client, tag, dockerfile string, files []File) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	all := append([]File{{Name: "Dockerfile", Mode: 0o644, Data: []byte(dockerfile)}}, files...)
	for _, f := range all {
		if err := tw.WriteHeader(&tar.Header{Name: f.Name, Mode: f.Mode, Size: int64(len(f.Data))}); err != nil {
			return err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	res, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true, PullParent: false})
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	defer res.Body.Close()
	// The build's messages, one JSON object each: an error among them
	// fails the build.
	dec := json.NewDecoder(res.Body)
	var log bytes.Buffer
	for {
		var m struct {
			Stream string `json:"stream"`
			Error  string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("build image %s: read the engine's answer: %w", tag, err)
		}
		log.WriteString(m.Stream)
		if m.Error != "" {
			return fmt.Errorf("build image %s: %s\n%s", tag, m.Error, log.String())
		}
	}
	return nil
}
