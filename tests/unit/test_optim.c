/* Unit tests for optim: SGD/Adam/AdamW trajectories and learning-rate
 * schedules against torch.optim 1.13 (tests/fixtures/optim_reference.txt,
 * written by tests/gen_optim_fixture.py), plus names, defaults, option
 * checks, empty optimizers and bit-exact resume from saved state. */
#include <stdlib.h>
#include <string.h>
#include "check.h"
#include "rtrain/optim.h"

/* The backend whose update kernels run (both backends of the build: main). */
static const rt_backend *be;

#define NP 7          /* parameters in every fixture case */
#define MAX_LINE 1024

/* Keep INIT and grad() in step with tests/gen_optim_fixture.py. */
static const float INIT[NP] = {0.5f, -1.25f, 2.0f, -0.75f, 1.5f, -2.5f, 0.875f};

static float grad(int step, int i)
{
    return (float)(((3 * step + 5 * i) % 11 - 5) * 0.125 + 0.0625 * (i % 3));
}

/* Tolerance against PyTorch: both sides do the same float operations in the
 * same order, except that PyTorch's AVX2 kernels fuse add(x, alpha=a) into
 * one multiply-add and we round twice: one rounding (<= 6e-8 relative) per
 * such operation, and over 10 steps the differences seen are <= 7e-8.
 * rtol 3e-7 (2.5 to 5 float ulps) leaves room for that and still catches a
 * misplaced term (the smallest error a deliberate mistake produced was
 * 3.5e-5: eps inside the square root). Parameters stay of order 1, so no
 * absolute term is needed. */
#define TRAJ_RTOL 3e-7
/* Schedules are computed in double and rounded to float once; PyTorch's
 * recursive chainable forms differ by double rounding only. 1 float ulp. */
#define LR_RTOL 1.2e-7

/* ---- fixture parsing ---------------------------------------------------- */

typedef struct opt_key {
    const char *name;
    size_t offset;
    int is_int;
} opt_key;

static const opt_key optim_keys[] = {
    {"lr", offsetof(rt_optim_opts, lr), 0},
    {"momentum", offsetof(rt_optim_opts, momentum), 0},
    {"dampening", offsetof(rt_optim_opts, dampening), 0},
    {"nesterov", offsetof(rt_optim_opts, nesterov), 1},
    {"weight_decay", offsetof(rt_optim_opts, weight_decay), 0},
    {"beta1", offsetof(rt_optim_opts, beta1), 0},
    {"beta2", offsetof(rt_optim_opts, beta2), 0},
    {"eps", offsetof(rt_optim_opts, eps), 0},
    {NULL, 0, 0},
};

static const opt_key schedule_keys[] = {
    {"step_epochs", offsetof(rt_schedule_opts, step_epochs), 1},
    {"gamma", offsetof(rt_schedule_opts, gamma), 0},
    {"min_lr", offsetof(rt_schedule_opts, min_lr), 0},
    {"warmup_start_factor", offsetof(rt_schedule_opts, warmup_start_factor), 0},
    {NULL, 0, 0},
};

/* Sets the field named `key` of the struct at base; 0 when not a known key. */
static int set_key(void *base, const opt_key *keys, const char *key, const char *val)
{
    for (const opt_key *k = keys; k->name; k++) {
        if (strcmp(k->name, key) != 0)
            continue;
        if (k->is_int)
            *(int *)((char *)base + k->offset) = atoi(val);
        else
            *(float *)((char *)base + k->offset) = strtof(val, NULL);
        return 1;
    }
    return 0;
}

/* State while reading the fixture: the case being replayed. */
typedef struct replay {
    char name[64];
    rt_optimizer *opt;
    float params[NP];
    int step;
    double worst;            /* largest relative error seen */
    rt_schedule_opts sched;
    float base_lr;
    long long steps_per_epoch, total_steps;
    int optim_cases, optim_steps, schedule_cases, schedule_points;
} replay;

static void begin_optim(replay *r, char *rest)
{
    rt_optim_opts o;
    rt_optim_opts_default(&o, RT_OPTIM_SGD);
    for (char *tok = strtok(rest, " \n"); tok; tok = strtok(NULL, " \n")) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        if (strcmp(tok, "type") == 0) {
            int t = rt_optim_type_from_name(eq + 1);
            CHECK_MSG(t >= 0, "fixture case %s: type %s", r->name, eq + 1);
            o.type = (rt_optim_type)t;
        } else if (strcmp(tok, "steps") != 0) {
            CHECK_MSG(set_key(&o, optim_keys, tok, eq + 1), "unknown key %s", tok);
        }
    }
    rt_optim_free(r->opt);
    r->opt = NULL;
    CHECK_OK(rt_optim_create(&r->opt, be, &o, NP));
    memcpy(r->params, INIT, sizeof INIT);
    r->step = 0;
    r->optim_cases++;
}

static void replay_step(replay *r, char *rest)
{
    int step, used;
    float lr, want[NP];
    CHECK(r->opt != NULL);
    if (!r->opt || sscanf(rest, "%d %f%n", &step, &lr, &used) != 2)
        return;
    char *p = rest + used;
    for (int i = 0; i < NP; i++) {
        char *end;
        want[i] = strtof(p, &end);
        CHECK_MSG(end != p, "case %s step %d: %d values, want %d", r->name, step, i, NP);
        p = end;
    }
    CHECK_MSG(step == r->step + 1, "case %s: step %d after %d", r->name, step, r->step);
    float g[NP];
    for (int i = 0; i < NP; i++)
        g[i] = grad(step, i);
    CHECK_OK(rt_optim_step(r->opt, r->params, g, lr));
    r->step = step;
    for (int i = 0; i < NP; i++) {
        double err = fabs((double)r->params[i] - want[i]) / fabs((double)want[i]);
        r->worst = err > r->worst ? err : r->worst;
        CHECK_MSG(err <= TRAJ_RTOL, "case %s step %d param %d: %.9g, torch %.9g", r->name,
                  step, i, (double)r->params[i], (double)want[i]);
    }
    CHECK(rt_optim_step_count(r->opt) == step);
    r->optim_steps++;
}

static void begin_schedule(replay *r, char *rest)
{
    rt_schedule_opts_default(&r->sched);
    for (char *tok = strtok(rest, " \n"); tok; tok = strtok(NULL, " \n")) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = '\0';
        const char *v = eq + 1;
        if (strcmp(tok, "type") == 0) {
            int t = rt_schedule_type_from_name(v);
            CHECK_MSG(t >= 0, "fixture schedule %s: type %s", r->name, v);
            r->sched.type = (rt_schedule_type)t;
        } else if (strcmp(tok, "warmup_steps") == 0) {
            r->sched.warmup_steps = atoll(v);
        } else if (strcmp(tok, "base_lr") == 0) {
            r->base_lr = strtof(v, NULL);
        } else if (strcmp(tok, "steps_per_epoch") == 0) {
            r->steps_per_epoch = atoll(v);
        } else if (strcmp(tok, "total_steps") == 0) {
            r->total_steps = atoll(v);
        } else {
            CHECK_MSG(set_key(&r->sched, schedule_keys, tok, v), "unknown key %s", tok);
        }
    }
    r->schedule_cases++;
}

static void check_lr(replay *r, const char *rest)
{
    long long step;
    double want;
    if (sscanf(rest, "%lld %lf", &step, &want) != 2) {
        CHECK_MSG(0, "schedule %s: bad line '%s'", r->name, rest);
        return;
    }
    float got = rt_schedule_lr(&r->sched, r->base_lr, step, r->steps_per_epoch, r->total_steps);
    CHECK_MSG(fabs(got - want) <= LR_RTOL * fabs(want), "schedule %s step %lld: %.9g, torch %.9g",
              r->name, step, (double)got, want);
    r->schedule_points++;
}

static void test_against_torch(void)
{
    const char *top = getenv("top_srcdir");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/optim_reference.txt", top ? top : ".");
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s (set top_srcdir to the source tree)", path);
    if (!f)
        return;
    replay r;
    memset(&r, 0, sizeof r);
    char line[MAX_LINE], word[16];
    int used;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || sscanf(line, "%15s%n", word, &used) != 1)
            continue;
        char *rest = line + used;
        if (strcmp(word, "optim") == 0 || strcmp(word, "schedule") == 0) {
            int n = 0;
            sscanf(rest, "%63s%n", r.name, &n);
            rest += n;
        }
        if (strcmp(word, "optim") == 0)
            begin_optim(&r, rest);
        else if (strcmp(word, "step") == 0)
            replay_step(&r, rest);
        else if (strcmp(word, "schedule") == 0)
            begin_schedule(&r, rest);
        else if (strcmp(word, "lr") == 0)
            check_lr(&r, rest);
        else
            CHECK_MSG(0, "%s: unknown line '%s'", path, word);
    }
    fclose(f);
    rt_optim_free(r.opt);
    /* A truncated or empty fixture must not pass silently. */
    CHECK_MSG(r.optim_cases == 8 && r.optim_steps == 80, "%d optimizer cases, %d steps",
              r.optim_cases, r.optim_steps);
    CHECK_MSG(r.schedule_cases == 5 && r.schedule_points >= 80, "%d schedules, %d points",
              r.schedule_cases, r.schedule_points);
    printf("torch comparison: %d optimizer steps, worst relative error %.3g (tolerance %g); "
           "%d schedule points\n", r.optim_steps, r.worst, TRAJ_RTOL, r.schedule_points);
}

/* ---- properties that need no reference ---------------------------------- */

static void test_names_and_defaults(void)
{
    CHECK(rt_optim_type_from_name("sgd") == RT_OPTIM_SGD);
    CHECK(rt_optim_type_from_name("adam") == RT_OPTIM_ADAM);
    CHECK(rt_optim_type_from_name("adamw") == RT_OPTIM_ADAMW);
    CHECK(rt_optim_type_from_name("Adam") == -1);
    CHECK(rt_optim_type_from_name("lamb") == -1);
    CHECK(rt_optim_type_from_name(NULL) == -1);
    CHECK(strcmp(rt_optim_type_name(RT_OPTIM_ADAMW), "adamw") == 0);
    CHECK(rt_schedule_type_from_name("cosine") == RT_SCHEDULE_COSINE);
    CHECK(rt_schedule_type_from_name("step") == RT_SCHEDULE_STEP);
    CHECK(rt_schedule_type_from_name("constant") == RT_SCHEDULE_CONSTANT);
    CHECK(rt_schedule_type_from_name("linear") == -1);
    CHECK(strcmp(rt_schedule_type_name(RT_SCHEDULE_STEP), "step") == 0);

    rt_optim_opts o;
    rt_optim_opts_default(&o, RT_OPTIM_ADAMW);
    CHECK(o.type == RT_OPTIM_ADAMW && o.lr == 1e-3f && o.weight_decay == 0.01f);
    CHECK(o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f);
    rt_optim_opts_default(&o, RT_OPTIM_ADAM);
    CHECK(o.weight_decay == 0.0f && o.lr == 1e-3f);
    rt_optim_opts_default(&o, RT_OPTIM_SGD);
    CHECK(o.momentum == 0.0f && o.dampening == 0.0f && !o.nesterov && o.weight_decay == 0.0f);
    rt_schedule_opts s;
    rt_schedule_opts_default(&s);
    CHECK(s.type == RT_SCHEDULE_CONSTANT && s.gamma == 0.1f && s.step_epochs == 30);
    CHECK(s.warmup_steps == 0 && s.warmup_start_factor == 1.0f / 3.0f && s.min_lr == 0.0f);
}

static void test_create_checks(void)
{
    rt_optimizer *opt = NULL;
    rt_optim_opts o;
    rt_optim_opts_default(&o, RT_OPTIM_SGD);
    o.nesterov = 1;   /* torch: "Nesterov momentum requires a momentum and zero dampening" */
    CHECK_FAILS(RT_ERR_CONFIG, rt_optim_create(&opt, be, &o, 10));
    CHECK(opt == NULL);
    o.momentum = 0.9f;
    o.dampening = 0.1f;
    CHECK_FAILS(RT_ERR_CONFIG, rt_optim_create(&opt, be, &o, 10));
    rt_optim_opts_default(&o, RT_OPTIM_SGD);
    o.lr = -0.1f;
    CHECK_FAILS(RT_ERR_CONFIG, rt_optim_create(&opt, be, &o, 10));
    rt_optim_opts_default(&o, RT_OPTIM_ADAM);
    o.beta2 = 1.0f;
    CHECK_FAILS(RT_ERR_CONFIG, rt_optim_create(&opt, be, &o, 10));
    o.beta2 = 0.999f;
    o.eps = -1e-8f;
    CHECK_FAILS(RT_ERR_CONFIG, rt_optim_create(&opt, be, &o, 10));
    o.eps = 1e-8f;
    o.type = (rt_optim_type)7;
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_optim_create(&opt, be, &o, 10));
    CHECK_FAILS(RT_ERR_INVALID_ARG, rt_optim_create(&opt, be, NULL, 10));
    CHECK(opt == NULL);
}

static void test_empty_and_state_layout(void)
{
    static const struct { rt_optim_type t; int slots; const char *names[2]; } want[] = {
        {RT_OPTIM_SGD, 1, {"momentum_buffer", NULL}},
        {RT_OPTIM_ADAM, 2, {"exp_avg", "exp_avg_sq"}},
        {RT_OPTIM_ADAMW, 2, {"exp_avg", "exp_avg_sq"}},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        rt_optim_opts o;
        rt_optim_opts_default(&o, want[k].t);
        o.momentum = want[k].t == RT_OPTIM_SGD ? 0.9f : 0.0f;
        rt_optimizer *opt = NULL;
        CHECK_OK(rt_optim_create(&opt, be, &o, 0));   /* a model with no parameters */
        if (!opt)
            continue;
        CHECK_OK(rt_optim_step(opt, NULL, NULL, 0.1f));
        CHECK(rt_optim_step_count(opt) == 1);
        CHECK(rt_optim_state_slots(opt) == want[k].slots);
        for (int s = 0; s < want[k].slots; s++)
            CHECK(strcmp(rt_optim_state_name(opt, s), want[k].names[s]) == 0);
        CHECK(rt_optim_state_name(opt, want[k].slots) == NULL);
        CHECK(rt_optim_state(opt, -1) == NULL);
        rt_optim_free(opt);
    }
    /* SGD without momentum keeps no state (its checkpoints hold no buffer). */
    rt_optim_opts o;
    rt_optim_opts_default(&o, RT_OPTIM_SGD);
    rt_optimizer *opt = NULL;
    CHECK_OK(rt_optim_create(&opt, be, &o, 10));
    if (opt) {
        CHECK(rt_optim_state_slots(opt) == 0);
        CHECK(rt_optim_state_name(opt, 0) == NULL);
        CHECK(rt_optim_state(opt, 0) == NULL);
        float p[10] = {0}, g[10] = {1};
        CHECK_OK(rt_optim_step(opt, p, g, 0.5f));
        CHECK(p[0] == -0.5f && p[1] == 0.0f);   /* p - lr * g, exact in binary */
        rt_optim_free(opt);
    }
    rt_optim_free(NULL);
}

/* Runs `steps` updates from `from` (1-based) of n parameters. */
static void run_steps(rt_optimizer *opt, float *p, size_t n, int from, int steps)
{
    float *g = malloc(n * sizeof *g);
    for (int s = from; s < from + steps; s++) {
        for (size_t i = 0; i < n; i++)
            g[i] = grad(s, (int)(i % 97));
        CHECK_OK(rt_optim_step(opt, p, g, 0.01f));
    }
    free(g);
}

/* Checkpoint/resume: copying the state slab and step count into a fresh
 * optimizer and continuing must give the same bits as never stopping. */
static void test_resume_bit_exact(void)
{
    enum { N = 1001, FIRST = 4, SECOND = 5 };
    rt_optim_type types[] = {RT_OPTIM_SGD, RT_OPTIM_ADAM, RT_OPTIM_ADAMW};
    for (int k = 0; k < 3; k++) {
        rt_optim_opts o;
        rt_optim_opts_default(&o, types[k]);
        o.momentum = 0.9f;   /* ignored by Adam/AdamW */
        rt_optimizer *a = NULL, *b = NULL;
        CHECK_OK(rt_optim_create(&a, be, &o, N));
        CHECK_OK(rt_optim_create(&b, be, &o, N));
        if (!a || !b)
            return;
        static float pa[N], pb[N];
        for (int i = 0; i < N; i++)
            pa[i] = INIT[i % NP];
        run_steps(a, pa, N, 1, FIRST);
        memcpy(pb, pa, sizeof pa);
        for (int s = 0; s < rt_optim_state_slots(a); s++)
            memcpy(rt_optim_state(b, s), rt_optim_state(a, s), N * sizeof(float));
        rt_optim_set_step_count(b, rt_optim_step_count(a));
        run_steps(a, pa, N, FIRST + 1, SECOND);
        run_steps(b, pb, N, FIRST + 1, SECOND);
        CHECK_MSG(memcmp(pa, pb, sizeof pa) == 0, "%s resume differs",
                  rt_optim_type_name(types[k]));
        CHECK(rt_optim_step_count(b) == FIRST + SECOND);
        rt_optim_free(a);
        rt_optim_free(b);
    }
}

/* The node update's pieces (src/train/node_update.c): an optimizer whose
 * state is the caller's memory (rt_optim_create_in), stepped in ranges
 * (rt_optim_step_range, counted once) with cuts at odd places, must give
 * the bits of a whole step by an ordinary optimizer, at every step, for
 * every type and option that changes the arithmetic. */
static void test_ranges_and_placed_state(void)
{
    enum { N = 1001, STEPS = 4 };
    static const size_t cuts[] = {0, 1, 16, 17, 500, 999, N};
    struct { rt_optim_type t; float momentum, weight_decay; int nesterov; } cases[] = {
        {RT_OPTIM_SGD, 0.0f, 0.0f, 0}, {RT_OPTIM_SGD, 0.9f, 1e-3f, 0},
        {RT_OPTIM_SGD, 0.9f, 0.0f, 1}, {RT_OPTIM_ADAM, 0, 1e-2f, 0},
        {RT_OPTIM_ADAMW, 0, 1e-2f, 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        rt_optim_opts o;
        rt_optim_opts_default(&o, cases[k].t);
        o.momentum = cases[k].momentum;
        o.nesterov = cases[k].nesterov;
        o.weight_decay = cases[k].weight_decay;
        int slots = rt_optim_slots_for(&o);
        CHECK(slots == (cases[k].t == RT_OPTIM_SGD && o.momentum == 0.0f ? 0
                        : cases[k].t == RT_OPTIM_SGD ? 1 : 2));
        float *state = calloc((size_t)(slots ? slots : 1) * N, sizeof(float));
        rt_optimizer *whole = NULL, *ranged = NULL;
        CHECK_OK(rt_optim_create(&whole, be, &o, N));
        CHECK_OK(rt_optim_create_in(&ranged, be, &o, N, slots ? state : NULL));
        if (!whole || !ranged || !state)
            return;
        if (slots)
            CHECK(rt_optim_state(ranged, 0) == state);   /* the caller's memory */
        static float pw[N], pr[N], g[N];
        for (int i = 0; i < N; i++)
            pw[i] = pr[i] = INIT[i % NP];
        for (int s = 1; s <= STEPS; s++) {
            for (int i = 0; i < N; i++)
                g[i] = grad(s, i % 97);
            CHECK_OK(rt_optim_step(whole, pw, g, 0.01f));
            for (size_t c = 0; c + 1 < sizeof cuts / sizeof cuts[0]; c++)
                CHECK_OK(rt_optim_step_range(ranged, pr, g, 0.01f, cuts[c], cuts[c + 1]));
            rt_optim_count_step(ranged);
            CHECK_MSG(memcmp(pw, pr, sizeof pw) == 0, "%s case %zu, step %d: ranges differ "
                      "from a whole step", rt_optim_type_name(cases[k].t), k, s);
            for (int sl = 0; sl < slots; sl++)
                CHECK(memcmp(rt_optim_state(whole, sl), rt_optim_state(ranged, sl),
                             N * sizeof(float)) == 0);
        }
        CHECK(rt_optim_step_count(ranged) == STEPS);
        CHECK_FAILS(RT_ERR_INVALID_ARG, rt_optim_step_range(ranged, pr, g, 0.01f, 5, 4));
        CHECK_FAILS(RT_ERR_INVALID_ARG, rt_optim_step_range(ranged, pr, g, 0.01f, 0, N + 1));
        rt_optim_free(whole);
        rt_optim_free(ranged);   /* must leave the caller's state alone: freed here */
        free(state);
    }
    rt_optim_opts bad;
    rt_optim_opts_default(&bad, RT_OPTIM_SGD);
    bad.type = (rt_optim_type)7;
    CHECK(rt_optim_slots_for(&bad) == -1);
    CHECK(rt_optim_slots_for(NULL) == -1);
}

/* Known points of the schedules, from their definitions. Values are
 * computed in double and rounded once to float: rtol 1.2e-7 (1 ulp). */
static void test_schedule_points(void)
{
    rt_schedule_opts s;
    rt_schedule_opts_default(&s);
    const float lr = 0.1f;
    CHECK(rt_schedule_lr(&s, lr, 12345, 100, 1000) == lr);

    s.type = RT_SCHEDULE_STEP;   /* gamma 0.1 every 30 epochs of 10 steps */
    CHECK(rt_schedule_lr(&s, lr, 299, 10, 1000) == lr);
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 300, 10, 1000), 0.01, 0, LR_RTOL);
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 600, 10, 1000), 0.001, 0, LR_RTOL);

    s.type = RT_SCHEDULE_COSINE;
    s.min_lr = 0.002f;
    double min = s.min_lr;
    CHECK(rt_schedule_lr(&s, lr, 0, 10, 100) == lr);
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 50, 10, 100), (lr + min) / 2, 0, LR_RTOL);
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 100, 10, 100), min, 0, LR_RTOL);
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 150, 10, 100), min, 0, LR_RTOL);   /* clamped */

    s.warmup_steps = 20;         /* cosine over the 80 steps after warm-up */
    s.warmup_start_factor = 0.25f;
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 0, 10, 100), 0.25 * lr, 0, LR_RTOL);
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 19, 10, 100), lr * (0.25 + 0.75 * 19 / 20.0), 0, LR_RTOL);
    CHECK(rt_schedule_lr(&s, lr, 20, 10, 100) == lr);
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 60, 10, 100), (lr + min) / 2, 0, LR_RTOL);
    CHECK_CLOSE(rt_schedule_lr(&s, lr, 100, 10, 100), min, 0, LR_RTOL);
}

int main(void)
{
    be = rt_backend_find("cpu");
    test_names_and_defaults();
    test_create_checks();
    test_empty_and_state_layout();
    test_resume_bit_exact();
    test_ranges_and_placed_state();
    test_schedule_points();
    test_against_torch();
    be = rt_backend_find("naive");   /* the same trajectories through the other backend */
    test_resume_bit_exact();
    test_ranges_and_placed_state();
    test_against_torch();
    return CHECK_DONE();
}
