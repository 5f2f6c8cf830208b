/* suggest.c: "did you mean": optimal-string-alignment edit distance over short words. */
#include "suggest.h"

#include <ctype.h>
#include <string.h>

static int fold(char ch)
{
    return ch == '-' ? '_' : tolower((unsigned char)ch);
}

unsigned suggest_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la >= SUGGEST_WORD_MAX || lb >= SUGGEST_WORD_MAX)
        return SUGGEST_WORD_MAX;
    /* three rows suffice: a swap looks two rows back */
    unsigned rows[3][SUGGEST_WORD_MAX + 1];
    unsigned *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cost = fold(a[i - 1]) != fold(b[j - 1]);
            unsigned d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (prev[j - 1] + cost < d)
                d = prev[j - 1] + cost;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
        unsigned *t = prev2;
        prev2 = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

const char *suggest_closest(const char *word, const char *const *words, size_t n)
{
    size_t len = strlen(word);
    unsigned limit = len <= 4 ? 1 : 2, best_d = limit + 1;
    const char *best = NULL;
    if (len < 2)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!words[i])
            continue;
        unsigned d = suggest_distance(word, words[i]);
        if (d == 0 && strcmp(word, words[i]) == 0)
            return NULL;
        /* a short known word is no typo of a long one: "db" is not close to "d" */
        if (d < best_d && d < strlen(words[i])) {
            best_d = d;
            best = words[i];
        }
    }
    return best;
}

const char *suggest_option(const char *arg, const char *const *opts, size_t n)
{
    char word[SUGGEST_WORD_MAX];
    const char *w = arg + strspn(arg, "-");
    size_t len = strcspn(w, "=");
    if (len == 0 || len >= sizeof word)
        return NULL;
    memcpy(word, w, len);
    word[len] = '\0';
    size_t best_d = SUGGEST_WORD_MAX;
    const char *best = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!opts[i])
            continue;
        const char *o = opts[i] + strspn(opts[i], "-");
        const char *hit = suggest_closest(word, &o, 1);
        if (!hit) {
            if (strcmp(word, o) == 0 && strcmp(arg, opts[i]) != 0 &&
                strncmp(arg, opts[i], strlen(opts[i])) != 0)
                return opts[i]; /* the right name with the wrong dashes: -listen */
            continue;
        }
        size_t d = suggest_distance(word, o);
        if (d < best_d) {
            best_d = d;
            best = opts[i];
        }
    }
    return best;
}
