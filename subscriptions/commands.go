package subscriptions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Every write at Pipedrive happens on the leader, in its scheduler, one run
// per company at a time: a replica that receives an admin request sends it
// to the leader over NATS request/reply and waits for the outcome. Two
// replicas can therefore never create a webhook for one company at once.

// The commands a replica sends the leader.
const (
	opReconcile  = "reconcile"
	opDisconnect = "disconnect"
)

type command struct {
	Op        string `json:"op"` // opReconcile | opDisconnect
	CompanyID int64  `json:"company_id"`
}

type commandReply struct {
	Error     string `json:"error,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	Gone      bool   `json:"gone,omitempty"`
}

// commandTimeout bounds how long an admin request waits for the leader.
const commandTimeout = 60 * time.Second

// ErrNoLeader means no replica leads right now (a few seconds after a
// leader dies); the request can be retried.
var ErrNoLeader = errors.New("no leader is reconciling right now; retry in a few seconds")

func (m *Manager) commandSubject() string { return "_PDGW." + m.opts.StreamName + ".command" }

func (m *Manager) handleCommand(msg *nats.Msg) {
	var cmd command
	if err := json.Unmarshal(msg.Data, &cmd); err != nil || cmd.CompanyID <= 0 {
		_ = msg.Respond(mustJSON(commandReply{Error: "bad command", Permanent: true}))
		return
	}
	var ch <-chan result
	switch cmd.Op {
	case opReconcile:
		ch = m.sched.Trigger(cmd.CompanyID)
	case opDisconnect:
		ch = m.sched.Enqueue(cmd.CompanyID, m.disconnect)
	default:
		_ = msg.Respond(mustJSON(commandReply{Error: "unknown command " + cmd.Op, Permanent: true}))
		return
	}
	go func() {
		select {
		case res := <-ch:
			rep := commandReply{Permanent: res.permanent, Gone: res.gone}
			if res.err != nil {
				rep.Error = res.err.Error()
			}
			_ = msg.Respond(mustJSON(rep))
		case <-time.After(commandTimeout):
		}
	}()
}

// send asks the leader to run op for the company and waits for the result.
func (m *Manager) send(ctx context.Context, op string, id int64) (commandReply, error) {
	ctx, cancel := context.WithTimeout(ctx, commandTimeout)
	defer cancel()
	msg, err := m.nc.RequestWithContext(ctx, m.commandSubject(), mustJSON(command{Op: op, CompanyID: id}))
	if err != nil {
		if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) {
			return commandReply{}, fmt.Errorf("%w (%v)", ErrNoLeader, err)
		}
		return commandReply{}, err
	}
	var rep commandReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return commandReply{}, errors.New("malformed reply from the leader")
	}
	return rep, nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain structs are marshalled here
	}
	return b
}
