/* suggest.h: "did you mean": the known word closest to a mistyped one (a config key, a section,
 * a command-line option), for the error messages of p1d and p1. */
#ifndef P1D_SUGGEST_H
#define P1D_SUGGEST_H

#include <stddef.h>

#define SUGGEST_WORD_MAX 64 /* longer words are never close to anything */

/* Edit distance of a and b (insert, delete, replace one character, or swap two neighbours),
 * ignoring case and counting '-' and '_' as equal; SUGGEST_WORD_MAX when either is longer. */
unsigned suggest_distance(const char *a, const char *b);

/* The word of words[n] (NULL entries skipped) that word is a likely typo of: at most 1 edit
 * away for words of up to 4 characters, 2 for longer ones, the nearest (the first on a tie).
 * NULL when none is that close or word is one of them. Returns a pointer into words. */
const char *suggest_closest(const char *word, const char *const *words, size_t n);

/* For an unknown option arg ("--lisen" or "--lisen=VALUE"): the option of opts[n] it is a
 * likely typo of (compared without the leading dashes and the "=VALUE"), or NULL. */
const char *suggest_option(const char *arg, const char *const *opts, size_t n);

#endif
