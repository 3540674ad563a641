// The broker check of bench/kafka_txn_sigkill.sh (which says what it is for), run with
// Java's source launcher on the jars of scripts/kafka-local:
//
//   scripts/kafka-local tool bench/kafka_txn_sigkill.java BOOTSTRAP KILLS KAFKA_LOCAL PORT
//
// Transaction i writes "i" to topic A partition i % 3, to topic B when i is even, and the
// offsets i + 1 of a group. Now and then, the moment a commit returns, it kills the broker
// (SIGKILL) and starts it again with `KAFKA_LOCAL restart --kill --port PORT`; its first
// transaction after a kill writes "-1" to every partition and is aborted, as the
// pipeline's is when the group lost its member with the broker. At the end every
// acknowledged transaction must be in A (and in B) read_committed, and no "-1".
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class KafkaTxnSigkill {
  static final int PARTITIONS_A = 3;

  // ConsumerGroupMetadata(groupId): the group's offsets without a member's generation
  // (no consumer here); deprecated, still served.
  @SuppressWarnings("removal")
  public static void main(String[] args) throws Exception {
    String bootstrap = args[0];
    int kills = Integer.parseInt(args[1]);
    String kafkaLocal = args[2], port = args[3];
    String run = Long.toString(System.currentTimeMillis(), 36);
    String a = "txn-sigkill-a-" + run, b = "txn-sigkill-b-" + run, source = "txn-sigkill-src-" + run;
    ConsumerGroupMetadata group = new ConsumerGroupMetadata("txn-sigkill-" + run);
    try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
      admin.createTopics(List.of(new NewTopic(a, PARTITIONS_A, (short) 1), new NewTopic(b, 1, (short) 1),
          new NewTopic(source, 1, (short) 1))).all().get();
    }
    Properties config = new Properties();
    config.put("bootstrap.servers", bootstrap);
    config.put("transactional.id", "txn-sigkill-" + run);
    config.put("key.serializer", StringSerializer.class.getName());
    config.put("value.serializer", StringSerializer.class.getName());
    config.put("max.block.ms", "30000");
    Random random = new Random();
    Set<Long> acknowledged = new TreeSet<>();
    // The broker's process once it runs again (each restart gives it a new one).
    CompletableFuture<ProcessHandle> broker = CompletableFuture.completedFuture(brokerProcess(kafkaLocal, port));
    int killed = 0, untilKill = 20 + random.nextInt(40);
    boolean abortNext = false;
    long i = 0;
    try (KafkaProducer<String, String> producer = new KafkaProducer<>(config)) {
      producer.initTransactions();
      while (killed < kills || !broker.isDone()) {
        if (abortNext) {
          abortNext = false;
          producer.beginTransaction();
          for (int p = 0; p < PARTITIONS_A; p++) producer.send(new ProducerRecord<>(a, p, "-1", "-1"));
          producer.send(new ProducerRecord<>(b, 0, "-1", "-1"));
          producer.flush();
          while (!abort(producer)) checkRestart(broker);
        }
        producer.beginTransaction();
        String value = Long.toString(i);
        producer.send(new ProducerRecord<>(a, (int) (i % PARTITIONS_A), value, value));
        if (i % 2 == 0) producer.send(new ProducerRecord<>(b, 0, value, value));
        producer.sendOffsetsToTransaction(Map.of(new TopicPartition(source, 0), new OffsetAndMetadata(i + 1)), group);
        while (!commit(producer)) checkRestart(broker);
        acknowledged.add(i);
        if (broker.isDone() && killed < kills && --untilKill == 0) {
          // The commit has just returned: the broker is writing its markers now.
          broker.join().destroyForcibly();
          killed++;
          System.out.printf("kill %d: broker SIGKILLed right after transaction %d was acknowledged%n", killed, i);
          broker = CompletableFuture.supplyAsync(() -> {
            run(kafkaLocal, "restart", "--kill", "--port", port);
            return brokerProcess(kafkaLocal, port);
          });
          untilKill = 20 + random.nextInt(40);
          abortNext = true;
        }
        i++;
      }
    }
    Set<Long> inA = readCommitted(bootstrap, a, PARTITIONS_A), inB = readCommitted(bootstrap, b, 1);
    List<String> lost = new ArrayList<>();
    for (long t : acknowledged) {
      boolean wantB = t % 2 == 0;
      if (!inA.contains(t) || (wantB && !inB.contains(t)))
        lost.add(t + " (in A " + inA.contains(t) + (wantB ? ", in B " + inB.contains(t) : "") + ")");
    }
    boolean abortedVisible = inA.contains(-1L) || inB.contains(-1L);
    System.out.printf("%d kills, %d transactions acknowledged, %d of them not (wholly) visible read_committed%s%s%n",
        killed, acknowledged.size(), lost.size(), lost.isEmpty() ? "" : ": " + lost,
        abortedVisible ? "; an aborted record is visible" : "");
    System.exit(lost.isEmpty() && !abortedVisible ? 0 : 3);
  }

  /** After a commit or abort timed out (the broker restarts): fails if the restart failed. */
  static void checkRestart(CompletableFuture<ProcessHandle> broker) {
    if (broker.isCompletedExceptionally()) broker.join();
    System.out.println("  timed out while the broker restarts; again");
  }

  static boolean commit(KafkaProducer<String, String> producer) {
    try {
      producer.commitTransaction();
      return true;
    } catch (TimeoutException e) {
      return false;
    }
  }

  static boolean abort(KafkaProducer<String, String> producer) {
    try {
      producer.abortTransaction();
      return true;
    } catch (TimeoutException e) {
      return false;
    }
  }

  /** The broker's process, from `KAFKA_LOCAL status` ("... (pid N, ..."). */
  static ProcessHandle brokerProcess(String kafkaLocal, String port) {
    Matcher m = Pattern.compile("pid (\\d+)").matcher(run(kafkaLocal, "status", "--port", port));
    if (!m.find()) throw new IllegalStateException("no broker pid in `kafka-local status --port " + port + "`");
    return ProcessHandle.of(Long.parseLong(m.group(1)))
        .orElseThrow(() -> new IllegalStateException("broker process " + m.group(1) + " is gone"));
  }

  /** Runs KAFKA_LOCAL with ARGS; its output; fails if it fails. */
  static String run(String kafkaLocal, String... args) {
    try {
      List<String> command = new ArrayList<>(List.of(kafkaLocal));
      command.addAll(List.of(args));
      Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
      String output = new String(process.getInputStream().readAllBytes());
      if (process.waitFor() != 0) throw new IllegalStateException(command + " failed:\n" + output);
      return output;
    } catch (Exception e) {
      throw new RuntimeException(e);
    }
  }

  /** The values of TOPIC read_committed up to its last stable offset (90 s at most). */
  static Set<Long> readCommitted(String bootstrap, String topic, int partitions) {
    Properties config = new Properties();
    config.put("bootstrap.servers", bootstrap);
    config.put("isolation.level", "read_committed");
    config.put("key.deserializer", StringDeserializer.class.getName());
    config.put("value.deserializer", StringDeserializer.class.getName());
    Set<Long> values = new HashSet<>();
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(config)) {
      List<TopicPartition> all = new ArrayList<>();
      for (int p = 0; p < partitions; p++) all.add(new TopicPartition(topic, p));
      consumer.assign(all);
      consumer.seekToBeginning(all);
      long deadline = System.currentTimeMillis() + 90_000;
      Map<TopicPartition, Long> end = consumer.endOffsets(all);
      while (all.stream().anyMatch(tp -> consumer.position(tp) < end.get(tp))) {
        if (System.currentTimeMillis() > deadline)
          throw new IllegalStateException("reading " + topic + " read_committed took over 90 s");
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200)))
          values.add(Long.parseLong(r.value()));
      }
    }
    return values;
  }
}
