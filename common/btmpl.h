/*
 * btmpl.h - the texts of delivery status notices (bounce_template_dir):
 * LANG/KIND files of [section]s with {variables}, format in
 * etc/bounce/README. Loaded whole and checked at start and reload, by
 * queue-mgr and by `postern check`, refusing a bad file with FILE:LINE,
 * like the configuration. Never reads a file while a notice is written:
 * the composer only looks at what was loaded.
 */
#ifndef POSTERN_BTMPL_H
#define POSTERN_BTMPL_H

#include <stddef.h>

enum btmpl_lang { BT_EN, BT_DE, BT_NLANG };
enum btmpl_kind { BT_FAILURE, BT_DELAY, BT_SUCCESS, BT_NKIND };

#define BTMPL_LINE_MAX 76       /* characters a template line may have */
#define BTMPL_FILE_MAX 65536    /* bytes a template file may have */

struct btmpl;

/* Loads DIR/{en,de}/{failure,delay,success}; -1 with "FILE:LINE: why". */
int btmpl_load(const char *dir, struct btmpl **out, char *err, size_t errlen);
void btmpl_free(struct btmpl *t);
/* A section's text (lines joined with "\n", no trailing newline), or NULL
 * when that kind has no such section. */
const char *btmpl_text(const struct btmpl *t, enum btmpl_lang lang, enum btmpl_kind kind,
                       const char *section);
/* The language code, "en" or "de". */
const char *btmpl_lang_code(enum btmpl_lang lang);

/* Whether a variable is known; per_rcpt: it may be used in a recipient's
 * section only. -1 unknown, 0 anywhere, 1 recipient sections only. */
int btmpl_var_kind(const char *name, size_t len);

#endif
