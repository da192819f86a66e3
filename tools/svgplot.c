/* SVG line charts (see svgplot.h). Each panel gets its own y range so a loss
 * and an accuracy can share a picture; the x range is shared. Every polyline
 * carries data-label and data-points attributes so a test (or a script) can
 * read the plotted values back from the XML. */
#include <math.h>
#include <stdio.h>
#include "svgplot.h"

#define WIDTH 720
#define PANEL_H 240
#define LEFT 70
#define RIGHT 170      /* room for the legend */
#define TOP 30
#define BOTTOM 40
#define DASH " stroke-dasharray=\"6,4\""   /* dashed series and their legend lines */

static const char *const colours[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                      "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

typedef struct range { double lo, hi; } range;

static void xml_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

static void widen(range *r, double v)
{
    if (!isfinite(v))
        return;
    if (v < r->lo)
        r->lo = v;
    if (v > r->hi)
        r->hi = v;
}

/* A flat or empty range gets some height so the line is drawn mid-panel. */
static void settle(range *r)
{
    if (r->lo > r->hi) {
        r->lo = 0;
        r->hi = 1;
    } else if (r->lo == r->hi) {
        double pad = fabs(r->lo) > 0 ? fabs(r->lo) * 0.1 : 1;
        r->lo -= pad;
        r->hi += pad;
    }
}

/* Tick spacing of 1, 2 or 5 times a power of ten giving about 5 ticks. */
static double tick_step(range r)
{
    double raw = (r.hi - r.lo) / 5;
    double p = pow(10, floor(log10(raw)));
    double m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static double map(double v, range r, double a, double b)
{
    return a + (v - r.lo) / (r.hi - r.lo) * (b - a);
}

static void axes(FILE *f, const svg_panel *p, range xr, range yr, int top)
{
    int x0 = LEFT, x1 = WIDTH - RIGHT, y0 = top + PANEL_H - BOTTOM, y1 = top + TOP;
    fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" "
            "stroke=\"#444\"/>\n", x0, y1, x1 - x0, y0 - y1);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\">", x0, top + 20);
    xml_text(f, p->title);
    fputs("</text>\n", f);
    /* Ticks are bounded in number: a step lost in rounding must not loop. */
    double ys = tick_step(yr);
    double v = ceil(yr.lo / ys) * ys;
    for (int k = 0; k < 12 && isfinite(ys) && ys > 0 && v <= yr.hi + ys * 1e-9; k++, v += ys) {
        double y = map(v, yr, y0, y1);
        fprintf(f, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n"
                "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.4g</text>\n",
                x0, y, x1, y, x0 - 5, y + 4, fabs(v) < ys * 1e-9 ? 0.0 : v);
    }
    double xs = tick_step(xr);
    if (xs < 1 && xr.hi - xr.lo >= 1)
        xs = 1;
    v = ceil(xr.lo / xs) * xs;
    for (int k = 0; k < 12 && isfinite(xs) && xs > 0 && v <= xr.hi + xs * 1e-9; k++, v += xs)
        fprintf(f, "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">"
                "%.4g</text>\n", map(v, xr, x0, x1), y0 + 15, v);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">",
            (x0 + x1) / 2, y0 + 32);
    xml_text(f, p->xlabel);
    fputs("</text>\n", f);
}

/* One polyline per unbroken stretch of finite values, with point markers. */
static void series(FILE *f, const svg_series *s, const char *colour, range xr, range yr, int top)
{
    int x0 = LEFT, x1 = WIDTH - RIGHT, y0 = top + PANEL_H - BOTTOM, y1 = top + TOP;
    int i = 0;
    while (i < s->n) {
        while (i < s->n && !(isfinite(s->y[i]) && isfinite(s->x[i])))
            i++;
        if (i == s->n)
            break;
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s data-label=\"",
                colour, s->dashed ? DASH : "");
        xml_text(f, s->label);
        fputs("\" data-points=\"", f);
        int j;
        for (j = i; j < s->n && isfinite(s->y[j]) && isfinite(s->x[j]); j++)
            fprintf(f, "%s%.17g,%.17g", j > i ? " " : "", s->x[j], s->y[j]);
        fputs("\" points=\"", f);
        for (int k = i; k < j; k++)
            fprintf(f, "%s%.1f,%.1f", k > i ? " " : "", map(s->x[k], xr, x0, x1),
                    map(s->y[k], yr, y0, y1));
        fputs("\"/>\n", f);
        for (int k = i; k < j; k++)
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                    map(s->x[k], xr, x0, x1), map(s->y[k], yr, y0, y1), colour);
        i = j;
    }
}

static void legend(FILE *f, const svg_panel *p, int top)
{
    for (int s = 0; s < p->nseries; s++) {
        int y = top + TOP + 10 + 18 * s;
        const char *c = colours[s % (int)(sizeof colours / sizeof colours[0])];
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" "
                "stroke-width=\"2\"%s/>\n<text x=\"%d\" y=\"%d\" font-size=\"11\">",
                WIDTH - RIGHT + 10, y, WIDTH - RIGHT + 30, y, c,
                p->series[s].dashed ? DASH : "", WIDTH - RIGHT + 35, y + 4);
        xml_text(f, p->series[s].label);
        fputs("</text>\n", f);
    }
}

int svg_plot_write(FILE *f, const svg_panel *panels, int npanels)
{
    range xr = {INFINITY, -INFINITY};
    for (int p = 0; p < npanels; p++)
        for (int s = 0; s < panels[p].nseries; s++)
            for (int i = 0; i < panels[p].series[s].n; i++)
                if (isfinite(panels[p].series[s].y[i]))
                    widen(&xr, panels[p].series[s].x[i]);
    settle(&xr);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n"
            "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
            WIDTH, PANEL_H * npanels, WIDTH, PANEL_H * npanels);
    for (int p = 0; p < npanels; p++) {
        int top = p * PANEL_H;
        range yr = {INFINITY, -INFINITY};
        for (int s = 0; s < panels[p].nseries; s++)
            for (int i = 0; i < panels[p].series[s].n; i++)
                widen(&yr, panels[p].series[s].y[i]);
        settle(&yr);
        fprintf(f, "<g class=\"panel\" data-metric=\"");
        xml_text(f, panels[p].title);
        fputs("\">\n", f);
        axes(f, &panels[p], xr, yr, top);
        for (int s = 0; s < panels[p].nseries; s++)
            series(f, &panels[p].series[s], colours[s % (int)(sizeof colours / sizeof colours[0])],
                   xr, yr, top);
        legend(f, &panels[p], top);
        fputs("</g>\n", f);
    }
    fputs("</svg>\n", f);
    return ferror(f) ? -1 : 0;
}
