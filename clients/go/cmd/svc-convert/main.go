// svc-convert converts one audio file with a voice on an svc-studio server through its REST API:
//
//	svc-convert -server http://127.0.0.1:7860 -token svc_... -voice starter -speaker flite_slt -transpose 2 in.wav out.wav
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	svcclient "svc-studio/svcclient"
)

func main() {
	server := flag.String("server", "http://127.0.0.1:7860", "the server (or its /api/v1 root)")
	token := flag.String("token", os.Getenv("SVC_API_TOKEN"), "API token (default $SVC_API_TOKEN)")
	voice := flag.String("voice", "", "voice key (GET /api/v1/voices lists them)")
	speaker := flag.String("speaker", "", "speaker name (empty: the voice's first)")
	transpose := flag.Int("transpose", 0, "semitones")
	extra := flag.String("options", "", `more options as JSON, e.g. '{"noise_scale": 0.4}'`)
	timeout := flag.Duration("timeout", 10*time.Minute, "give up (and cancel the job) after this long")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: svc-convert [flags] in.wav out.wav\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 2 || *voice == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*server, *token, *voice, *speaker, *transpose, *extra, *timeout, flag.Arg(0), flag.Arg(1)); err != nil {
		fmt.Fprintln(os.Stderr, "svc-convert:", err)
		os.Exit(1)
	}
}

func run(server, token, voice, speaker string, transpose int, extra string, timeout time.Duration,
	in, out string) error {
	options := map[string]interface{}{}
	if extra != "" {
		if err := json.Unmarshal([]byte(extra), &options); err != nil {
			return fmt.Errorf("-options is not a JSON object: %v", err)
		}
	}
	options["model"], options["speaker"], options["transpose"] = voice, speaker, transpose

	ctx, stop := context.WithTimeout(context.Background(), timeout)
	defer stop()
	client := svcclient.NewClient(server, token)
	job, err := client.SubmitConversion(ctx, svcclient.Conversion{AudioPath: in, Options: options})
	if err != nil {
		return err
	}
	fmt.Printf("job %s %s\n", job.ID, job.Status)
	id, lastStage := job.ID, ""
	job, err = client.Wait(ctx, id, 0, func(j *svcclient.Job) {
		if j.Stage != lastStage {
			lastStage = j.Stage
			fmt.Printf("  %-14s %3.0f%%\n", j.Stage, 100*j.Progress)
		}
	})
	if errors.Is(err, context.DeadlineExceeded) {
		client.Cancel(context.Background(), id)
		return fmt.Errorf("job %s did not finish within %v (cancelled)", id, timeout)
	}
	if err != nil {
		return err
	}
	if err := svcclient.JobErr(job); err != nil {
		return err
	}
	if len(job.Results) == 0 {
		return fmt.Errorf("job %s finished without a result file", job.ID)
	}
	result := job.Results[0]
	for _, r := range job.Results {
		if strings.HasPrefix(r.MediaType, "audio/") {
			result = r
			break
		}
	}
	if err := client.Download(ctx, job.ID, result.Name, out); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d bytes) in %.2f s\n", out, result.Size, job.Timings["total"])
	return nil
}
