// Package svcclient is a small client for the svc-studio REST API (/api/v1): voices, conversions, jobs and
// their result files. Standard library only. Field names follow docs/openapi.json.
package svcclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// APIPrefix is the versioned root of every endpoint.
const APIPrefix = "/api/v1"

// DefaultPoll is how often Wait asks for a job's state.
const DefaultPoll = 500 * time.Millisecond

// Job statuses; Done, Failed and Cancelled are final.
const (
	Queued    = "queued"
	Running   = "running"
	Done      = "done"
	Failed    = "failed"
	Cancelled = "cancelled"
)

// APIError is an error answer of the API: Code is stable (see docs/api.md), Message readable, Status the HTTP
// status (0 for a job that failed or was cancelled).
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Status  int    `json:"-"`
}

func (e *APIError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("%s (HTTP %d, %s)", e.Message, e.Status, e.Code)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Voice is one voice the server offers; Key is what to pass as the "model" option.
type Voice struct {
	Key           string   `json:"key"`
	Label         string   `json:"label"`
	Speakers      []string `json:"speakers"`
	Family        string   `json:"family"`
	SpeechEncoder string   `json:"speech_encoder"`
	Uploaded      bool     `json:"uploaded"`
	Mine          bool     `json:"mine"`
	HasCluster    bool     `json:"has_cluster"`
	HasDiffusion  bool     `json:"has_diffusion"`
}

// ResultFile is one output of a finished job (download it by Name).
type ResultFile struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

// Job is a conversion or cover and where it stands. Times are unix seconds; Progress is 0..1.
type Job struct {
	ID              string                 `json:"id"`
	Kind            string                 `json:"kind"`
	Owner           string                 `json:"owner"`
	Params          map[string]interface{} `json:"params"`
	Status          string                 `json:"status"`
	Stage           string                 `json:"stage"`
	Progress        float64                `json:"progress"`
	ETASeconds      *float64               `json:"eta_seconds"`
	Message         string                 `json:"message"`
	Log             []string               `json:"log"`
	Timings         map[string]float64     `json:"timings"`
	Results         []ResultFile           `json:"results"`
	Error           *APIError              `json:"error"`
	CreatedAt       float64                `json:"created_at"`
	StartedAt       *float64               `json:"started_at"`
	FinishedAt      *float64               `json:"finished_at"`
	Attempts        int                    `json:"attempts"`
	MaxAttempts     int                    `json:"max_attempts"`
	Worker          *string                `json:"worker"`
	HeartbeatAt     *float64               `json:"heartbeat_at"`
	CancelRequested bool                   `json:"cancel_requested"`
	Queue           string                 `json:"queue"`
}

// Finished tells whether the job is done, failed or cancelled.
func (j *Job) Finished() bool {
	return j.Status == Done || j.Status == Failed || j.Status == Cancelled
}

// Conversion is what SubmitConversion sends: the audio file, the options ("model", "speaker", "transpose", ...:
// the same as the page's) and an optional Idempotency-Key (the same key returns the first job).
type Conversion struct {
	AudioPath      string
	Options        map[string]interface{}
	IdempotencyKey string
}

// Client talks to one server. HTTP may be replaced (timeouts, transport).
type Client struct {
	BaseURL string // ".../api/v1"
	Token   string
	HTTP    *http.Client
}

// NewClient returns a client for baseURL (the server, "http://host:7860", or its API root) with an API token
// (may be empty when the server needs none).
func NewClient(baseURL, token string) *Client {
	root := strings.TrimRight(baseURL, "/")
	if !strings.HasSuffix(root, APIPrefix) {
		root += APIPrefix
	}
	return &Client{BaseURL: root, Token: token, HTTP: &http.Client{}}
}

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// do sends req and decodes a JSON answer into out (when out is not nil); error answers become *APIError.
func (c *Client) do(req *http.Request, out interface{}) error {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return readAPIError(resp)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func readAPIError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var body struct {
		Error *APIError `json:"error"`
	}
	if json.Unmarshal(data, &body) == nil && body.Error != nil {
		body.Error.Status = resp.StatusCode
		return body.Error
	}
	return &APIError{Code: fmt.Sprintf("http_%d", resp.StatusCode), Message: strings.TrimSpace(string(data)),
		Status: resp.StatusCode}
}

func (c *Client) get(ctx context.Context, path string, out interface{}) error {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	return c.do(req, out)
}

// Voices lists every voice the server offers.
func (c *Client) Voices(ctx context.Context) ([]Voice, error) {
	var raw json.RawMessage
	if err := c.get(ctx, "/voices", &raw); err != nil {
		return nil, err
	}
	var voices []Voice
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '[' {
		err := json.Unmarshal(trimmed, &voices)
		return voices, err
	}
	var body struct {
		Voices []Voice `json:"voices"`
	}
	err := json.Unmarshal(raw, &body)
	return body.Voices, err
}

// SubmitConversion uploads the audio with its options (multipart: "audio" file + "options" JSON) and returns the
// queued job.
func (c *Client) SubmitConversion(ctx context.Context, conv Conversion) (*Job, error) {
	options := conv.Options
	if options == nil {
		options = map[string]interface{}{}
	}
	encoded, err := json.Marshal(options)
	if err != nil {
		return nil, err
	}
	file, err := os.Open(conv.AudioPath)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var body bytes.Buffer
	form := multipart.NewWriter(&body)
	if err := form.WriteField("options", string(encoded)); err != nil {
		return nil, err
	}
	part, err := form.CreateFormFile("audio", filepath.Base(conv.AudioPath))
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(part, file); err != nil {
		return nil, err
	}
	if err := form.Close(); err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/conversions", &body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", form.FormDataContentType())
	if conv.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", conv.IdempotencyKey)
	}
	var job Job
	if err := c.do(req, &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// Job returns a job's current state.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var job Job
	if err := c.get(ctx, "/jobs/"+url.PathEscape(id), &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// Cancel asks the server to stop a job: a queued one is cancelled at once, a running one within about a second.
func (c *Client) Cancel(ctx context.Context, id string) (*Job, error) {
	req, err := c.newRequest(ctx, http.MethodPost, "/jobs/"+url.PathEscape(id)+"/cancel", nil)
	if err != nil {
		return nil, err
	}
	var job Job
	if err := c.do(req, &job); err != nil {
		return nil, err
	}
	return &job, nil
}

// Wait polls the job every poll (DefaultPoll when 0) until it is finished or ctx ends; onUpdate (may be nil)
// sees every state read. A finished job is returned as it is: check Status (and Error) yourself, or use JobErr.
func (c *Client) Wait(ctx context.Context, id string, poll time.Duration, onUpdate func(*Job)) (*Job, error) {
	if poll <= 0 {
		poll = DefaultPoll
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		job, err := c.Job(ctx, id)
		if err != nil {
			return nil, err
		}
		if onUpdate != nil {
			onUpdate(job)
		}
		if job.Finished() {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-ticker.C:
		}
	}
}

// JobErr is nil for a done job and an *APIError (Status 0) for a failed or cancelled one.
func JobErr(job *Job) error {
	switch {
	case job.Status == Done:
		return nil
	case job.Error != nil:
		return &APIError{Code: job.Error.Code, Message: job.Error.Message}
	case job.Status == Cancelled:
		return &APIError{Code: "cancelled", Message: "Job " + job.ID + " was cancelled."}
	default:
		return &APIError{Code: "internal", Message: "Job " + job.ID + " is " + job.Status + "."}
	}
}

// Download writes a job's result file to dest (through dest + ".part", renamed when complete).
func (c *Client) Download(ctx context.Context, id, name, dest string) error {
	req, err := c.newRequest(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id)+"/results/"+url.PathEscape(name), nil)
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return readAPIError(resp)
	}
	partial := dest + ".part"
	out, err := os.Create(partial)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, resp.Body); err != nil {
		out.Close()
		os.Remove(partial)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(partial)
		return err
	}
	return os.Rename(partial, dest)
}
